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
