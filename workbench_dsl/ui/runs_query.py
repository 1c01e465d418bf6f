"""Paged, filtered lists of runs and their costs for the dashboard, fast with many thousands.

The SQL is the run store's (:mod:`workbench_dsl.engine.run_queries`); this
module shapes its rows for the pages. Costs: a task costs its duration times its
compute profile's cost per hour (the engine records both); a run costs the sum of
its tasks, and a pipeline the sum of its runs.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from workbench_dsl.engine import run_queries as rq
from workbench_dsl.engine.run_queries import SINCE, STATUSES
from workbench_dsl.engine.run_view import run_status

PAGE_SIZE = 50
__all__ = ["SINCE", "STATUSES"]  # re-exported for the pages


@dataclass(frozen=True)
class RunFilter:
    """What the runs list is narrowed to (empty fields: no narrowing)."""

    pipeline: str = ""
    status: str = ""
    since: str = ""
    run: str = ""  # a run id prefix

    def where(self) -> tuple[str, list[Any]]:
        return rq.runs_where(self.pipeline, self.status, self.since, self.run)

    def query(self, **changes: Any) -> dict[str, str]:
        """The filter as URL parameters (for links that keep it)."""
        d = {"pipeline": self.pipeline, "status": self.status, "since": self.since, "run": self.run}
        d.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in d.items() if v}


def page_of_runs(
    conn: sqlite3.Connection, f: RunFilter, page: int, size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], int]:
    """One page of runs, newest first, with their task counts; and how many match."""
    rows, total = rq.page_of_runs(conn, *f.where(), page, size)
    counts = task_counts(conn, [r["run_id"] for r in rows])
    now = time.time()
    out = []
    for r in rows:
        c = counts.get(r["run_id"], {})
        status = run_status(r)
        end = r["finished_at"] or (now if status == "RUNNING" else None)
        cost = float(r["cost"] or 0.0) or c.get("cost", 0.0)
        out.append(
            {
                "run_id": r["run_id"],
                "pipeline": r["pipeline"],
                "status": status,
                "created_at": r["created_at"],
                "duration_s": (end - r["started_at"]) if end and r["started_at"] else None,
                "tasks": c.get("tasks", 0),
                "cached": c.get("cached", 0),
                "failed": c.get("failed", 0),
                "cost": cost,
                "error": r["error"],
            }
        )
    return out, int(total)


task_counts = rq.task_counts
pipelines = rq.pipelines
cost_since = rq.cost_since
most_expensive = rq.most_expensive


def running_costs(conn: sqlite3.Connection) -> dict[str, float]:
    """Per pipeline, what its runs in progress have cost so far (their row says 0 until the end)."""
    rows = rq.running_runs_without_cost(conn)
    counts = task_counts(conn, [r["run_id"] for r in rows])
    out: dict[str, float] = {}
    for r in rows:
        out[r["pipeline"]] = out.get(r["pipeline"], 0.0) + counts.get(r["run_id"], {}).get(
            "cost", 0.0
        )
    return out


def pipeline_totals(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per pipeline: runs, how they ended, total and mean cost (runs in progress count what
    they cost so far), total run time, last run."""
    live = running_costs(conn)
    rows = rq.pipeline_rows(conn)
    out = []
    for r in rows:
        cost = float(r["cost"] or 0.0) + live.get(r["pipeline"], 0.0)
        out.append(
            {
                "pipeline": r["pipeline"],
                "runs": int(r["runs"]),
                "succeeded": int(r["succeeded"] or 0),
                "failed": int(r["failed"] or 0),
                "cost": cost,
                "mean_cost": cost / max(1, int(r["runs"])),
                "seconds": float(r["seconds"] or 0.0),
                "last": r["last"],
            }
        )
    return sorted(out, key=lambda t: (-t["cost"], t["pipeline"]))


def burn_rate(conn: sqlite3.Connection) -> tuple[float, list[dict[str, Any]]]:
    """Dollars per hour of the tasks running now, and those tasks."""
    rows = rq.running_tasks(conn)
    live = [r for r in rows if run_status(r) == "RUNNING"]
    tasks = [
        {
            "run_id": r["run_id"],
            "pipeline": r["pipeline"],
            "task": r["task"],
            "cost_per_hour": float(r["cost_per_hour"] or 0.0),
            "started_at": r["task_started"],
        }
        for r in live
    ]
    return sum(t["cost_per_hour"] for t in tasks), tasks
