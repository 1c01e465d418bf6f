"""A stored run as people see it: its status, durations, tasks, attempts and cost.

``workbench runs`` and the ``workbench ui`` dashboard both show runs through
these functions, so the two always agree (a ``RUNNING`` run whose engine is gone
is ``INTERRUPTED`` in both, a task's cost is the same number in both).
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from typing import Any

from workbench_dsl.engine import run_queries as rq
from workbench_dsl.engine.run_queries import EXECUTOR_KINDS
from workbench_dsl.engine.store import RunStore, pid_alive

__all__ = ["EXECUTOR_KINDS", "TASK_PAGE", "run_details", "run_status", "task_view"]


def run_status(row: Any) -> str:
    """The run's status; a RUNNING run whose engine is gone shows as INTERRUPTED."""
    status = str(row["status"])
    if status == "RUNNING" and row["host"] == socket.gethostname() and not pid_alive(row["pid"]):
        return "INTERRUPTED"
    return status


def iso(ts: float | None) -> str | None:
    """A local ISO timestamp to the second (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def run_duration(row: Any) -> float | None:
    """Seconds from start to end (to now while it runs); None before it started."""
    if row["started_at"] is None:
        return None
    end = row["finished_at"] or (time.time() if row["status"] == "RUNNING" else None)
    return None if end is None else round(end - row["started_at"], 3)


def read_status_line(path: str | None) -> str | None:
    """The one line of progress a running task wrote to its status file."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(400).strip().replace("\n", " ") or None
    except OSError:
        return None


#: Tasks ``runs show`` and the run page list at once (``--all`` / the next page for more).
TASK_PAGE = 200


def task_view(t: Any, run_running: bool) -> dict[str, Any]:
    """One task as ``runs show`` and the run page show it."""
    line = t["status_line"]
    if t["status"] == "RUNNING" and run_running:
        line = read_status_line(t["status_file"]) or line
    keys = t.keys()
    outputs = t["outputs_json"] if "outputs_json" in keys else None
    return {
        "name": t["task"],
        "status": t["status"],
        "cached": bool(t["cached"]),
        "reused": bool(t["reused"]),
        "attempts": int(t["attempts"] or 0),
        "duration_s": round(float(t["duration_s"] or 0.0), 3),
        "cost_per_hour": float(t["cost_per_hour"] or 0.0),
        "cost": round(float(t["cost"] or 0.0), 8),
        "error": t["error"],
        "log_path": t["log_path"],
        "status_line": line,
        "component": t["component"],
        "outputs": json.loads(outputs) if outputs else None,
    }


def run_details(
    store: RunStore, row: Any, *, limit: int | None = TASK_PAGE, offset: int = 0
) -> dict[str, Any]:
    """Everything ``workbench runs show`` prints, as one JSON-ready dict.

    ``tasks`` is one page (``limit`` tasks from ``offset``, in the order they
    started; ``limit=None``: all of them); ``task_counts`` counts every task of
    the run, and ``tasks_total`` says how many there are.
    """
    run_id = row["run_id"]
    status = run_status(row)
    conn = store.conn
    totals = rq.task_totals(conn, run_id)
    page = rq.task_page(conn, run_id, limit, offset)
    tasks = [task_view(t, status == "RUNNING") for t in page]
    attempts = [
        {
            "task": a["task"],
            "attempt": a["attempt"],
            "status": a["status"],
            "duration_s": a["duration_s"],
            "exit_code": a["exit_code"],
            "error": a["error"],
            "log_path": a["log_path"],
        }
        for a in rq.attempts_of(conn, run_id, None if limit is None else [t["name"] for t in tasks])
    ]
    return {
        "run_id": run_id,
        "pipeline": row["pipeline"],
        "experiment": row["experiment"],
        "status": status,
        "source": row["source"],
        "created_at": iso(row["created_at"]),
        "finished_at": iso(row["finished_at"]),
        "duration_s": run_duration(row),
        "parameters": store.run_parameters(run_id),
        "outputs": json.loads(row["outputs_json"]) if row["outputs_json"] else {},
        "cost": round(float(row["cost"] or 0.0), 8) or round(totals["cost"], 8),
        "error": row["error"],
        "tasks_total": totals["total"],
        "tasks_offset": offset,
        "task_counts": {"cached": totals["cached"], **totals["by_status"]},
        "tasks": tasks,
        "attempts": attempts,
    }
