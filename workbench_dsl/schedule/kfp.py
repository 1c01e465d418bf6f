"""KFP recurring runs: create, list, show, pause, resume, update and delete through ``kfp.Client``.

A schedule's name is the recurring run's display name. KFP cannot change a recurring
run in place (kubeflow/pipelines#3789), and deleting one also deletes the runs it
started, in flight or not (kubeflow/pipelines#12573: their workflows are owned by the
ScheduledWorkflow). So ``update`` creates the new recurring run under the same name,
*disables* the old one, and deletes it only once none of its runs is in flight; until
then it stays, disabled, and the next ``update`` of the same name removes it when it can. ``delete`` refuses while runs are in flight unless ``force``.

KFP evaluates cron in UTC with a seconds field first: expressions are converted by
:func:`workbench_dsl.schedule.cron.to_kfp`; a timezone other than UTC is refused.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from workbench_dsl.errors import UsageError
from workbench_dsl.schedule import cron
from workbench_dsl.schedule.kfp_client import KfpConnection, connect, kfp_errors, to_dict
from workbench_dsl.schedule.pipeline_ref import PreparedPipeline

IN_FLIGHT = {"PENDING", "RUNNING", "PAUSED", "CANCELING"}


def check_timezone(tz: str | None) -> None:
    if tz and tz.upper() not in ("UTC", "ETC/UTC", "Z"):
        raise UsageError(
            f"--timezone {tz}: KFP evaluates recurring runs' cron in UTC; write the "
            f"expression in UTC (or leave --timezone out)"
        )


class KfpSchedules:
    """Recurring runs on one KFP deployment."""

    def __init__(self, conn: KfpConnection, client: Any = None) -> None:
        self.conn = conn
        self.client = client if client is not None else connect(conn)

    # -- lookups --------------------------------------------------------------------------

    def _named(self, name: str) -> list[Any]:
        flt = json.dumps(
            {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
        )
        out: list[Any] = []
        token = ""
        with kfp_errors(self.conn):
            while True:
                resp = self.client.list_recurring_runs(
                    page_token=token, page_size=100, filter=flt, namespace=self.conn.namespace
                )
                out += list(resp.recurring_runs or [])
                token = resp.next_page_token or ""
                if not token:
                    break
        return sorted(out, key=lambda r: str(r.created_at or ""))

    def _current(self, name: str) -> Any:
        """The newest recurring run with this name (superseded ones are older and disabled)."""
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        return found[-1]

    def _in_flight(self, rr: Any) -> int:
        with kfp_errors(self.conn):
            resp = self.client.list_runs(
                page_size=100, sort_by="created_at desc", experiment_id=rr.experiment_id
            )
        return sum(
            1
            for r in resp.runs or []
            if r.recurring_run_id == rr.recurring_run_id and str(r.state) in IN_FLIGHT
        )

    def _experiment_id(self, experiment: str | None) -> str:
        with kfp_errors(self.conn):
            exp = self.client.create_experiment(
                name=experiment or "Default", namespace=self.conn.namespace
            )
        return str(exp.experiment_id)

    # -- commands -------------------------------------------------------------------------

    def create(
        self,
        name: str,
        pipeline: PreparedPipeline,
        *,
        cron_expr: str,
        max_concurrency: int = 1,
        catchup: bool = True,
        experiment: str | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Create the recurring run ``name`` (refused if one exists: use update)."""
        kfp_cron = cron.to_kfp(cron_expr)
        if self._named(name):
            raise UsageError(
                f"a KFP recurring run named {name!r} exists; change it with "
                f"`workbench schedule update {name} --target kfp ...`"
            )
        exp_id = self._experiment_id(experiment)
        return self._create(
            name,
            exp_id,
            pipeline.text,
            pipeline.params,
            kfp_cron,
            max_concurrency,
            catchup,
            enabled,
        )

    def _create(
        self,
        name: str,
        experiment_id: str,
        text: str,
        params: dict[str, Any],
        kfp_cron: str,
        max_concurrency: int,
        catchup: bool,
        enabled: bool,
    ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "pipeline.yaml"
            path.write_text(text, encoding="utf-8")
            with kfp_errors(self.conn):
                rr = self.client.create_recurring_run(
                    experiment_id=experiment_id,
                    job_name=name,
                    cron_expression=kfp_cron,
                    max_concurrency=max_concurrency,
                    no_catchup=not catchup,
                    params=params,
                    pipeline_package_path=str(path),
                    enabled=enabled,
                )
        return summary(rr)

    def all(self) -> list[dict[str, Any]]:
        out: list[Any] = []
        token = ""
        with kfp_errors(self.conn):
            while True:
                resp = self.client.list_recurring_runs(
                    page_token=token, page_size=100, namespace=self.conn.namespace
                )
                out += list(resp.recurring_runs or [])
                token = resp.next_page_token or ""
                if not token:
                    break
        return [
            summary(r) for r in sorted(out, key=lambda r: (r.display_name or "", str(r.created_at)))
        ]

    def show(self, name: str) -> dict[str, Any]:
        rr = self._current(name)
        with kfp_errors(self.conn):
            full = self.client.get_recurring_run(rr.recurring_run_id)
        data = summary(full)
        data["raw"] = to_dict(full)
        return data

    def pause(self, name: str) -> dict[str, Any]:
        rr = self._current(name)
        with kfp_errors(self.conn):
            self.client.disable_recurring_run(rr.recurring_run_id)
        return {**summary(rr), "mode": "DISABLE"}

    def resume(self, name: str) -> dict[str, Any]:
        rr = self._current(name)
        with kfp_errors(self.conn):
            self.client.enable_recurring_run(rr.recurring_run_id)
        return {**summary(rr), "mode": "ENABLE"}

    def update(
        self,
        name: str,
        *,
        pipeline: PreparedPipeline | None = None,
        params: dict[str, Any] | None = None,
        cron_expr: str | None = None,
        max_concurrency: int | None = None,
        catchup: bool | None = None,
    ) -> dict[str, Any]:
        """Recreate ``name`` with the changes; the old one is disabled, and deleted once idle."""
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        old = found[-1]
        # Recurring runs an earlier update left disabled: remove those that are idle now.
        for stale in found[:-1]:
            if str(stale.mode) == "DISABLE":
                self._delete_if_idle(stale)
        kfp_cron = cron.to_kfp(cron_expr) if cron_expr else _cron_of(old)
        text = pipeline.text if pipeline is not None else _spec_text(old)
        old_params = dict((old.runtime_config and old.runtime_config.parameters) or {})
        new_params = {**old_params, **(pipeline.params if pipeline else {}), **(params or {})}
        enabled = str(old.mode) != "DISABLE"
        new = self._create(
            name,
            str(old.experiment_id),
            text,
            new_params,
            kfp_cron,
            int(max_concurrency if max_concurrency is not None else (old.max_concurrency or 1)),
            bool(catchup if catchup is not None else not old.no_catchup),
            enabled,
        )
        with kfp_errors(self.conn):
            self.client.disable_recurring_run(old.recurring_run_id)
        new["replaced"] = old.recurring_run_id
        new["replaced_deleted"] = self._delete_if_idle(old)
        return new

    def delete(self, name: str, *, force: bool = False) -> dict[str, Any]:
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        busy = {rr.recurring_run_id: self._in_flight(rr) for rr in found}
        if any(busy.values()) and not force:
            n = sum(busy.values())
            raise UsageError(
                f"{name!r} has {n} run(s) in flight, which KFP would stop with it "
                f"(kubeflow/pipelines#12573); pause it now and delete it when they finish, "
                f"or pass --force"
            )
        with kfp_errors(self.conn):
            for rr in found:
                self.client.delete_recurring_run(rr.recurring_run_id)
        return {"name": name, "deleted": [rr.recurring_run_id for rr in found]}

    def cleanup(self, name: str) -> list[str]:
        """Delete superseded (older, disabled) recurring runs of ``name`` with no run in flight."""
        found = self._named(name)
        return [
            rr.recurring_run_id
            for rr in found[:-1]
            if str(rr.mode) == "DISABLE" and self._delete_if_idle(rr)
        ]

    def _delete_if_idle(self, rr: Any) -> bool:
        if self._in_flight(rr):
            return False
        with kfp_errors(self.conn):
            self.client.delete_recurring_run(rr.recurring_run_id)
        return True


def _cron_of(rr: Any) -> str:
    trigger = rr.trigger
    cs = trigger.cron_schedule if trigger is not None else None
    if cs is None or not cs.cron:
        raise UsageError(
            f"KFP recurring run {rr.display_name!r} has no cron trigger; give --cron to update it"
        )
    return str(cs.cron)


def _spec_text(rr: Any) -> str:
    import yaml

    spec = rr.pipeline_spec
    if not spec:
        raise UsageError(
            f"KFP recurring run {rr.display_name!r} runs an uploaded pipeline version; give "
            f"the PIPELINE to update it"
        )
    if isinstance(spec, dict) and "pipeline_spec" in spec:
        docs = [spec["pipeline_spec"], spec.get("platform_spec") or {}]
        return yaml.safe_dump_all([d for d in docs if d], sort_keys=False)
    return str(yaml.safe_dump(spec, sort_keys=False))


def summary(rr: Any) -> dict[str, Any]:
    trigger = rr.trigger
    cs = trigger.cron_schedule if trigger is not None else None
    return {
        "name": rr.display_name,
        "target": "kfp",
        "recurring_run_id": rr.recurring_run_id,
        "experiment_id": rr.experiment_id,
        "cron": cs.cron if cs is not None else None,
        "mode": str(rr.mode) if rr.mode is not None else None,
        "paused": str(rr.mode) == "DISABLE",
        "max_concurrency": int(rr.max_concurrency) if rr.max_concurrency else None,
        "catchup": (not rr.no_catchup) if rr.no_catchup is not None else None,
        "params": dict((rr.runtime_config and rr.runtime_config.parameters) or {}),
        "created_at": str(rr.created_at) if rr.created_at else None,
    }
