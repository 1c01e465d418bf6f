"""A local schedule as people see it (next ticks, recent runs), and pausing or resuming it.

``workbench schedule`` and the ``workbench ui`` dashboard both go through these
functions, so a pause from either has the same effect.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from workbench_dsl.schedule import cron
from workbench_dsl.schedule.store import Schedule, ScheduleStore


def local_view(s: Schedule, store: ScheduleStore, ticks: int = 0) -> dict[str, Any]:
    """``s`` as JSON with its next ``ticks`` fire times (none while paused) and latest runs."""
    data = s.to_json()
    now = cron.now_utc()
    data["next_ticks"] = (
        []
        if s.paused
        else [
            cron.iso(t)
            for t in cron.ticks_between(
                s.cron,
                s.timezone,
                max(now, cron.parse_iso(s.start_after)),
                now + timedelta(days=3660),
                limit=max(ticks, 1),
            )
        ]
    )
    rows = store.ticks(s.id, limit=max(ticks, 1))
    data["recent"] = [
        {k: r[k] for k in ("tick", "status", "run_id", "reason", "log")} for r in rows
    ]
    return data


def set_paused(store: ScheduleStore, name: str, paused: bool, ticks: int = 1) -> dict[str, Any]:
    """Pause (start nothing) or resume the local schedule ``name``; returns its view.

    On resume the schedule picks up from now: ticks that fell while it was paused do
    not run.
    """
    fields: dict[str, Any] = {"paused": paused}
    if not paused:
        fields["start_after"] = cron.iso(cron.now_utc())
    return local_view(store.update(name, **fields), store, ticks)


# -- KFP recurring runs: the one line each command prints ----------------------------------


def kfp_update_line(d: dict[str, Any]) -> str:
    """What ``schedule update --target kfp`` did, and what it left for later."""
    line = (
        f"updated KFP recurring run {d['name']}: {d['recurring_run_id']} takes every tick "
        f"after {d['start_time']}; {d['replaced']} "
    )
    busy = d.get("replaced_runs_in_flight") or []
    if d.get("replaced_deleted"):
        line += "deleted" + (f" ({len(busy)} run(s) in flight go on)" if busy else "")
    else:
        line += (
            f"disabled, kept while its {len(busy)} run(s) in flight finish (KFP "
            f"{d.get('kfp_version')} would stop them; the next update or delete removes it)"
        )
    if busy:
        line += (
            f"; KFP counts --max-concurrency per recurring run, so the new version does not "
            f"wait for those {len(busy)}"
        )
    return line


def kfp_resume_line(d: dict[str, Any]) -> str:
    """What ``schedule resume --target kfp`` means for the ticks missed while paused."""
    name = d["name"]
    if not d.get("resumed"):
        return f"{name} is not paused"
    missed = d.get("missed_ticks")
    n = "some" if missed is None else str(missed)
    if d.get("will_run_missed") == 0:
        how = f" (now {d['recurring_run_id']})" if d.get("replaced") else ""
        return (
            f"resumed KFP recurring run {name} from now{how}: the {n} tick(s) missed while "
            f"paused do not run, as for a local schedule (--run-missed runs them)"
        )
    runs = (
        f"all {n} tick(s) missed while paused, one after another"
        if d.get("catchup")
        else "the latest tick missed while paused"
    )
    return f"resumed KFP recurring run {name}: KFP now runs {runs} (--run-missed)"


def kfp_delete_line(d: dict[str, Any]) -> str:
    """What ``schedule delete --target kfp`` did to the runs in flight."""
    line = f"deleted KFP recurring run {d['name']} ({', '.join(d['deleted'])})"
    if d.get("runs_stopped"):
        return line + f"; stopped its runs in flight: {', '.join(d['runs_stopped'])}"
    if d.get("runs_in_flight"):
        return line + f"; its {len(d['runs_in_flight'])} run(s) in flight go on"
    return line
