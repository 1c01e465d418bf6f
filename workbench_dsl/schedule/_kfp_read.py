"""A KFP recurring run as read back from the API server: its summary, its versions, its ticks.

The API server marshals without unpopulated fields (``EmitUnpopulated: false`` in
backend/src/apiserver/common/utils.go), so a field at its default (``no_catchup``
false, an empty description) is simply absent: every reader here treats absent as the
proto default, never as unknown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workbench_dsl.errors import UsageError
from workbench_dsl.schedule import cron

#: How a version made by update names the one it replaces (in its description).
REPLACES = "workbench schedule: replaces recurring run "


def ordered(found: list[Any]) -> list[Any]:
    """Versions of one schedule, superseded ones first, the current one last.

    Each version made by update names the one it replaces in its description: creation
    times alone cannot order two updates within one second (KFP keeps seconds)."""
    replaced = {
        str(rr.description)[len(REPLACES) :]
        for rr in found
        if str(rr.description or "").startswith(REPLACES)
    }
    old = [rr for rr in found if rr.recurring_run_id in replaced]
    live = [rr for rr in found if rr.recurring_run_id not in replaced]
    return sorted(old, key=age) + sorted(live, key=age)


def missed_ticks(kfp_cron: str | None, since: datetime | None, until: datetime) -> int | None:
    """How many ticks of a KFP cron fell in ``(since, until]``, read in UTC; None if unknown."""
    if not kfp_cron or since is None:
        return None
    from croniter import croniter

    expr = kfp_cron.replace("?", "*")
    try:
        if expr.startswith("@"):
            it = croniter(expr, since)
        else:
            it = croniter(expr, since, second_at_beginning=True)
        n = 0
        while n < 10000 and it.get_next(datetime) <= until:
            n += 1
    except (ValueError, KeyError):
        return None
    return n


def few(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def mode(rr: Any) -> str:
    return str(rr.mode) if rr.mode is not None else "MODE_UNSPECIFIED"


def as_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, str) and v:
        try:
            return cron.parse_iso(v)
        except ValueError:
            return None
    return None


def age(rr: Any) -> tuple[datetime, str]:
    return (
        as_datetime(rr.created_at) or datetime.min.replace(tzinfo=UTC),
        str(rr.recurring_run_id or ""),
    )


def cron_start(rr: Any) -> datetime | None:
    cs = rr.trigger.cron_schedule if rr.trigger is not None else None
    return as_datetime(cs.start_time) if cs is not None else None


def cron_end(rr: Any) -> datetime | None:
    cs = rr.trigger.cron_schedule if rr.trigger is not None else None
    return as_datetime(cs.end_time) if cs is not None else None


def cron_of(rr: Any) -> str:
    trigger = rr.trigger
    cs = trigger.cron_schedule if trigger is not None else None
    if cs is None or not cs.cron:
        raise UsageError(
            f"KFP recurring run {rr.display_name!r} has no cron trigger; give --cron to update it"
        )
    return str(cs.cron)


def spec_text(rr: Any) -> str:
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
    """A recurring run as shown. KFP leaves out fields at their default (false, 0, ""),
    so a missing ``no_catchup`` is false: catch-up on."""
    trigger = rr.trigger
    cs = trigger.cron_schedule if trigger is not None else None
    start = as_datetime(cs.start_time) if cs is not None else None
    return {
        "name": rr.display_name,
        "target": "kfp",
        "recurring_run_id": rr.recurring_run_id,
        "experiment_id": rr.experiment_id,
        "cron": cs.cron if cs is not None else None,
        "timezone": "the cluster's cronScheduleTimezone (UTC unless changed)",
        "mode": mode(rr),
        "paused": mode(rr) == "DISABLE",
        "max_concurrency": int(rr.max_concurrency) if rr.max_concurrency else None,
        "catchup": not bool(rr.no_catchup),
        "params": dict((rr.runtime_config and rr.runtime_config.parameters) or {}),
        "start_time": cron.iso(start) if start else None,
        "created_at": iso_or_none(rr.created_at),
        "updated_at": iso_or_none(rr.updated_at),
    }


def iso_or_none(v: Any) -> str | None:
    t = as_datetime(v)
    return cron.iso(t) if t else None
