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

from workbench_dsl.engine.store import RunStore, pid_alive

#: Task kinds that ran (or would run) a program; DAGs, loops and iterations only group them.
EXECUTOR_KINDS = ("container", "importer", "stub")


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


def run_details(store: RunStore, row: Any) -> dict[str, Any]:
    """Everything ``workbench runs show`` prints, as one JSON-ready dict."""
    run_id = row["run_id"]
    status = run_status(row)
    tasks = []
    for t in store.tasks(run_id):
        if t["kind"] not in EXECUTOR_KINDS:
            continue
        line = t["status_line"]
        if t["status"] == "RUNNING" and status == "RUNNING":
            line = read_status_line(t["status_file"]) or line
        tasks.append(
            {
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
                "outputs": json.loads(t["outputs_json"]) if t["outputs_json"] else None,
            }
        )
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
        for a in store.attempts(run_id)
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
        "cost": round(float(row["cost"] or 0.0), 8) or round(sum(t["cost"] for t in tasks), 8),
        "error": row["error"],
        "tasks": tasks,
        "attempts": attempts,
    }
