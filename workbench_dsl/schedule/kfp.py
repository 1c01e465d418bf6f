"""KFP recurring runs: create, list, show, pause, resume, update and delete through ``kfp.Client``.

A schedule's name is the recurring run's display name. What KFP 2.17 does, read from its
API server and ScheduledWorkflow controller (kubeflow/pipelines backend/src):

* A recurring run cannot be changed in place (kubeflow/pipelines#3789). ``update``
  disables the old one first, then creates the new one with its cron ``start_time`` at
  the moment the old one stopped (the server's ``updated_at``): the controller fires a
  tick only after ``max(last fired tick, start_time)``, so every tick belongs to exactly
  one version and none fires twice.
* Disabling only sets the ScheduledWorkflow's ``spec.enabled``: runs in flight go on
  (the proto's comment says otherwise; ``ChangeJobMode`` shows it does not stop them).
* Deleting one deletes the ScheduledWorkflow, and Kubernetes cascades to the workflows
  it owns, stopping runs in flight (kubeflow/pipelines#12573), unless the request says
  ``propagation_policy=ORPHAN``, which servers from 2.16.0 honour (#12574). Older
  servers ignore the parameter (grpc-gateway drops unknown query parameters), so it is
  only relied on when the server reports 2.16+ in healthz ``tag_name`` (or the user says
  so with ``--kfp-version``).
* Re-enabling fires the ticks missed while disabled: every one with catch-up on, only
  the latest with ``no_catchup`` (``GetNextScheduledTime`` from the last fired tick).
  A local schedule resumes from now, so ``resume`` recreates the recurring run from now
  when ticks were missed (``--run-missed`` keeps KFP's behaviour).
* Cron is robfig/cron with seconds first, read in the controller's
  ``CRON_SCHEDULE_TIMEZONE`` (``cronScheduleTimezone`` in pipeline-install-config,
  "UTC" in KFP's manifests; the cluster's local zone when unset). There is no
  per-recurring-run time zone.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench_dsl.errors import UsageError, WorkbenchError
from workbench_dsl.schedule import _kfp_read as _read
from workbench_dsl.schedule import cron
from workbench_dsl.schedule._kfp_read import missed_ticks, summary
from workbench_dsl.schedule.kfp_client import (
    KfpConnection,
    ServerInfo,
    connect,
    kfp_errors,
    server_info,
    to_dict,
)
from workbench_dsl.schedule.pipeline_ref import PreparedPipeline

#: Run states that are not final (model.RuntimeState; a run the persistence agent has
#: reported before its workflow had a phase is RUNTIME_STATE_UNSPECIFIED).
IN_FLIGHT = ("RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "CANCELING", "PAUSED")
#: The first KFP release whose DeleteRecurringRun takes propagation_policy (#12574).
ORPHAN_SINCE = (2, 16, 0)
#: The API server refuses max_concurrency outside [1, 10] (api_converter.go toModelJob).
MAX_CONCURRENCY = 10
#: The API server caps page_size at 200 (list_request_util.go maxPageSize).
PAGE_SIZE = 200


def check_timezone(tz: str | None) -> None:
    if tz and tz.upper() not in ("UTC", "ETC/UTC", "Z"):
        raise UsageError(
            f"--timezone {tz}: a KFP recurring run has no time zone of its own; KFP reads "
            f"every cron in its controller's cronScheduleTimezone (UTC in KFP's manifests): "
            f"write the cron in that zone and leave --timezone out"
        )


def check_max_concurrency(n: int | None) -> None:
    if n is not None and not 1 <= n <= MAX_CONCURRENCY:
        raise UsageError(
            f"--max-concurrency {n}: KFP allows 1 to {MAX_CONCURRENCY} runs of a recurring "
            f"run at once"
        )


class KfpSchedules:
    """Recurring runs on one KFP deployment."""

    def __init__(self, conn: KfpConnection, client: Any = None) -> None:
        self.conn = conn
        self.client = client if client is not None else connect(conn)
        self._info: ServerInfo | None = None

    # -- the server -----------------------------------------------------------------------

    def info(self) -> ServerInfo:
        if self._info is None:
            self._info = server_info(self.client, self.conn)
        return self._info

    def orphan_supported(self) -> bool:
        v = self.info().version
        return v is not None and v >= ORPHAN_SINCE

    def _server_now(self) -> datetime:
        self._info = None  # a fresh Date header
        return self.info().now or cron.now_utc()

    # -- lookups --------------------------------------------------------------------------

    def _list_all(self, call: Any, field: str, **kwargs: Any) -> list[Any]:
        out: list[Any] = []
        token = ""
        with kfp_errors(self.conn):
            while True:
                resp = call(page_token=token, page_size=PAGE_SIZE, **kwargs)
                out += list(getattr(resp, field) or [])
                token = resp.next_page_token or ""
                if not token:
                    return out

    def _named(self, name: str) -> list[Any]:
        flt = json.dumps(
            {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
        )
        found = self._list_all(
            self.client.list_recurring_runs,
            "recurring_runs",
            filter=flt,
            namespace=self.conn.namespace,
        )
        return _read.ordered(found)

    def _current(self, name: str) -> Any:
        """The newest recurring run with this name (older ones are superseded versions)."""
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        return found[-1]

    def runs_in_flight(self, rr: Any) -> list[str]:
        """Ids of ``rr``'s runs not yet in a final state, all pages, filtered by the server."""
        flt = json.dumps(
            {
                "predicates": [
                    {
                        "operation": "EQUALS",
                        "key": "recurring_run_id",
                        "string_value": rr.recurring_run_id,
                    },
                    {"operation": "IN", "key": "state", "string_values": {"values": IN_FLIGHT}},
                ]
            }
        )
        where: dict[str, Any] = (
            {"experiment_id": rr.experiment_id}
            if rr.experiment_id
            else {"namespace": self.conn.namespace}
        )
        runs = self._list_all(self.client.list_runs, "runs", filter=flt, **where)
        return [str(r.run_id) for r in runs]

    def _catch_up_from(self, rr: Any) -> datetime | None:
        """Where KFP's controller resumes counting ticks: the last tick it fired, else the
        cron start_time, else the creation time (GetNextScheduledTime)."""
        last = self._last_fired(rr)
        start = _read.cron_start(rr)
        known = [t for t in (last, start) if t is not None]
        return max(known) if known else _read.as_datetime(rr.created_at)

    def _last_fired(self, rr: Any) -> datetime | None:
        """The tick (``scheduled_at``) of ``rr``'s newest run, if it has one."""
        flt = json.dumps(
            {
                "predicates": [
                    {
                        "operation": "EQUALS",
                        "key": "recurring_run_id",
                        "string_value": rr.recurring_run_id,
                    }
                ]
            }
        )
        where: dict[str, Any] = (
            {"experiment_id": rr.experiment_id}
            if rr.experiment_id
            else {"namespace": self.conn.namespace}
        )
        with kfp_errors(self.conn):
            resp = self.client.list_runs(
                page_size=1, sort_by="scheduled_at desc", filter=flt, **where
            )
        return next((_read.as_datetime(r.scheduled_at) for r in resp.runs or []), None)

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
        check_max_concurrency(max_concurrency)
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
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        replaces: str | None = None,
    ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "pipeline.yaml"
            path.write_text(text, encoding="utf-8")
            with kfp_errors(self.conn):
                rr = self.client.create_recurring_run(
                    experiment_id=experiment_id,
                    job_name=name,
                    description=f"{_read.REPLACES}{replaces}" if replaces else None,
                    cron_expression=kfp_cron,
                    start_time=cron.iso(start_time) if start_time is not None else None,
                    end_time=cron.iso(end_time) if end_time is not None else None,
                    max_concurrency=max_concurrency,
                    no_catchup=not catchup,
                    params=params,
                    pipeline_package_path=str(path),
                    enabled=enabled,
                )
        return summary(rr)

    def all(self) -> list[dict[str, Any]]:
        out = self._list_all(
            self.client.list_recurring_runs, "recurring_runs", namespace=self.conn.namespace
        )
        by_name: dict[str, list[Any]] = {}
        for r in out:
            by_name.setdefault(str(r.display_name or ""), []).append(r)
        rows = []
        for name in sorted(by_name):
            versions = _read.ordered(by_name[name])
            for i, r in enumerate(versions):
                # an older version an update kept while its runs finish (KFP before 2.16)
                rows.append({**summary(r), "superseded": i < len(versions) - 1})
        return rows

    def show(self, name: str) -> dict[str, Any]:
        rr = self._current(name)
        with kfp_errors(self.conn):
            full = self.client.get_recurring_run(rr.recurring_run_id)
        data = summary(full)
        data["runs_in_flight"] = self.runs_in_flight(full)
        data["raw"] = to_dict(full)
        return data

    def pause(self, name: str) -> dict[str, Any]:
        """Disable it: no new runs; runs in flight go on."""
        rr = self._current(name)
        if _read.mode(rr) != "DISABLE":
            with kfp_errors(self.conn):
                self.client.disable_recurring_run(rr.recurring_run_id)
        return {**summary(rr), "mode": "DISABLE", "paused": True}

    def resume(self, name: str, *, run_missed: bool = False) -> dict[str, Any]:
        """Start it again from now, as a local schedule resumes: ticks missed while paused
        do not run. KFP's own enable would run them (all with catch-up on, the latest with
        it off), so when some were missed it is recreated from now instead; ``run_missed``
        just enables it and lets KFP run them."""
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        rr = found[-1]
        base = summary(rr)
        if _read.mode(rr) != "DISABLE":
            return {**base, "resumed": False, "missed_ticks": 0, "will_run_missed": 0}
        now = self._server_now()
        missed = missed_ticks(base["cron"], self._catch_up_from(rr), now)
        if not run_missed and missed != 0 and base["cron"]:
            data = self._replace(rr, found[:-1], enabled=True, start_time=now)
            return {**data, "resumed": True, "missed_ticks": missed, "will_run_missed": 0}
        with kfp_errors(self.conn):
            self.client.enable_recurring_run(rr.recurring_run_id)
        will_run = missed if base["catchup"] or missed is None else min(missed, 1)
        return {
            **base,
            "mode": "ENABLE",
            "paused": False,
            "resumed": True,
            "missed_ticks": missed,
            "will_run_missed": will_run,
        }

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
        """Replace ``name`` by a new version; no tick fires twice, no run in flight stops."""
        check_max_concurrency(max_concurrency)
        kfp_cron = cron.to_kfp(cron_expr) if cron_expr else None
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        old = found[-1]
        return self._replace(
            old,
            found[:-1],
            enabled=_read.mode(old) != "DISABLE",
            pipeline=pipeline,
            params=params,
            kfp_cron=kfp_cron,
            max_concurrency=max_concurrency,
            catchup=catchup,
        )

    def _replace(
        self,
        old: Any,
        superseded: list[Any],
        *,
        enabled: bool,
        start_time: datetime | None = None,
        pipeline: PreparedPipeline | None = None,
        params: dict[str, Any] | None = None,
        kfp_cron: str | None = None,
        max_concurrency: int | None = None,
        catchup: bool | None = None,
    ) -> dict[str, Any]:
        """Stop ``old`` firing, create its successor from that moment, retire ``old``."""
        text = pipeline.text if pipeline is not None else _read.spec_text(old)
        old_params = dict((old.runtime_config and old.runtime_config.parameters) or {})
        new_params = {**old_params, **(pipeline.params if pipeline else {}), **(params or {})}
        new_cron = kfp_cron or _read.cron_of(old)
        concurrency = int(max_concurrency or old.max_concurrency or 1)
        new_catchup = catchup if catchup is not None else not bool(old.no_catchup)
        # Versions an earlier update could not delete yet (runs in flight on a pre-2.16
        # server): disable any still enabled, delete those that can go now.
        retired = [rr.recurring_run_id for rr in superseded if self._retire(rr)]
        was_enabled = _read.mode(old) != "DISABLE"
        if was_enabled:
            with kfp_errors(self.conn):
                self.client.disable_recurring_run(old.recurring_run_id)
        if start_time is None:
            # Ticks after the moment the old version stopped belong to the new one: the
            # server's own record of that moment (updated_at), so the client's clock does
            # not matter; never before the last tick it fired, nor before its own start.
            with kfp_errors(self.conn):
                stopped = self.client.get_recurring_run(old.recurring_run_id)
            known = [
                t
                for t in (
                    _read.as_datetime(stopped.updated_at),
                    self._last_fired(old),
                    _read.cron_start(old),
                )
                if t is not None
            ]
            start_time = max(known) if known else self._server_now()
        try:
            new = self._create(
                str(old.display_name),
                str(old.experiment_id),
                text,
                new_params,
                new_cron,
                concurrency,
                new_catchup,
                enabled,
                start_time=start_time,
                end_time=_read.cron_end(old),
                replaces=str(old.recurring_run_id),
            )
        except WorkbenchError:
            if was_enabled:  # put the old version back as it was
                with kfp_errors(self.conn):
                    self.client.enable_recurring_run(old.recurring_run_id)
            raise
        in_flight = self.runs_in_flight(old)
        deleted = self._retire(old, in_flight, disable=False)  # disabled above
        new.update(
            {
                "replaced": old.recurring_run_id,
                "replaced_deleted": deleted,
                "replaced_runs_in_flight": in_flight,
                "superseded_deleted": retired,
                "start_time": cron.iso(start_time),
                "kfp_version": self.info().tag,
            }
        )
        return new

    def _retire(self, rr: Any, in_flight: list[str] | None = None, disable: bool = True) -> bool:
        """Delete a superseded version if that stops no run; else leave it disabled."""
        if disable and _read.mode(rr) != "DISABLE":
            with kfp_errors(self.conn):
                self.client.disable_recurring_run(rr.recurring_run_id)
        busy = self.runs_in_flight(rr) if in_flight is None else in_flight
        if busy and not self.orphan_supported():
            return False
        self._delete(rr.recurring_run_id)
        return True

    def _delete(self, rid: str) -> None:
        with kfp_errors(self.conn):
            if self.orphan_supported():
                # kfp.Client.delete_recurring_run does not pass it on; its API class does.
                self.client._recurring_run_api.recurring_run_service_delete_recurring_run(
                    recurring_run_id=rid, propagation_policy="ORPHAN"
                )
            else:
                self.client.delete_recurring_run(rid)

    def delete(self, name: str, *, force: bool = False) -> dict[str, Any]:
        """Delete every version of ``name``; runs in flight go on (2.16+) or it is refused."""
        found = self._named(name)
        if not found:
            raise UsageError(f"no KFP recurring run named {name!r} at {self.conn.host}")
        orphan = self.orphan_supported()
        runs = [run for rr in found for run in self.runs_in_flight(rr)]
        if runs and not orphan and not force:
            raise self._would_stop(name, runs)
        enabled = [rr for rr in found if _read.mode(rr) != "DISABLE"]
        with kfp_errors(self.conn):
            for rr in enabled:
                self.client.disable_recurring_run(rr.recurring_run_id)
        if not orphan and not force and not runs:
            # A tick may have started a run between the look and the disable: look again
            # now that nothing can start one, and put things back if it did.
            runs = [run for rr in found for run in self.runs_in_flight(rr)]
            if runs:
                with kfp_errors(self.conn):
                    for rr in enabled:
                        self.client.enable_recurring_run(rr.recurring_run_id)
                raise self._would_stop(name, runs)
        for rr in found:
            self._delete(rr.recurring_run_id)
        info = self.info()
        return {
            "name": name,
            "deleted": [rr.recurring_run_id for rr in found],
            "propagation_policy": "ORPHAN" if orphan else None,
            "runs_in_flight": runs,
            "runs_stopped": [] if orphan else runs,
            "kfp_version": info.tag,
        }

    def _would_stop(self, name: str, runs: list[str]) -> UsageError:
        info = self.info()
        hint = (
            "; if the server is KFP 2.16 or later, which keeps them (propagation_policy "
            "ORPHAN), say so with --kfp-version 2.16"
            if info.version is None
            else ""
        )
        return UsageError(
            f"{name!r} has {len(runs)} run(s) in flight ({_read.few(runs)}); KFP {info.tag} "
            f"deletes a recurring run's workflows with it (kubeflow/pipelines#12573), which "
            f"would stop them: pause it now and delete it when they finish, or pass --force "
            f"to stop them{hint}"
        )
