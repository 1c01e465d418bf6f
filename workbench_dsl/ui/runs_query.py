"""Paged, filtered queries over the run store, fast with many thousands of runs.

Each list query reads one page through an index (``runs_created``,
``runs_pipeline_created``, ``runs_status_created``) and then the task counts of
that page's runs only (the ``tasks`` primary key starts with ``run_id``).
Costs: a task costs its duration times its compute profile's cost per hour (the
engine records both); a run costs the sum of its tasks, and a pipeline the sum of
its runs.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from workbench_dsl.engine.run_view import EXECUTOR_KINDS, run_status

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
SINCE = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
PAGE_SIZE = 50
_RUN_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_KINDS = "(" + ",".join(f"'{k}'" for k in EXECUTOR_KINDS) + ")"


@dataclass(frozen=True)
class RunFilter:
    """What the runs list is narrowed to (empty fields: no narrowing)."""

    pipeline: str = ""
    status: str = ""
    since: str = ""
    run: str = ""  # a run id prefix

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.pipeline:
            clauses.append("pipeline = ?")
            args.append(self.pipeline)
        if self.status in STATUSES:
            clauses.append("status = ?")
            args.append(self.status)
        if self.since in SINCE:
            clauses.append("created_at >= ?")
            args.append(time.time() - SINCE[self.since])
        if self.run:
            # GLOB (not LIKE) is case-sensitive, so the primary key's index serves it.
            clauses.append("run_id GLOB ?" if _RUN_ID.match(self.run) else "0")
            if _RUN_ID.match(self.run):
                args.append(self.run + "*")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def query(self, **changes: Any) -> dict[str, str]:
        """The filter as URL parameters (for links that keep it)."""
        d = {"pipeline": self.pipeline, "status": self.status, "since": self.since, "run": self.run}
        d.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in d.items() if v}


def page_of_runs(
    conn: sqlite3.Connection, f: RunFilter, page: int, size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], int]:
    """One page of runs, newest first, with their task counts; and how many match."""
    where, args = f.where()
    total = conn.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0]
    rows = conn.execute(
        "SELECT run_id, pipeline, status, created_at, started_at, finished_at, cost, pid, host,"
        f" error FROM runs{where} ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
        [*args, size, max(0, page - 1) * size],
    ).fetchall()
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


def task_counts(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per run: executor tasks, cache hits, failures and the cost so far."""
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    now = time.time()
    rows = conn.execute(
        "SELECT run_id, COUNT(*) AS tasks, SUM(cached) AS cached,"
        " SUM(status = 'FAILED') AS failed, SUM(cost) AS cost,"
        " SUM(CASE WHEN status = 'RUNNING' AND started_at IS NOT NULL"
        "     THEN (? - started_at) * cost_per_hour / 3600.0 ELSE 0 END) AS running_cost"
        f" FROM tasks WHERE run_id IN ({marks}) AND kind IN {_KINDS} GROUP BY run_id",
        [now, *run_ids],
    ).fetchall()
    return {
        r["run_id"]: {
            "tasks": int(r["tasks"] or 0),
            "cached": int(r["cached"] or 0),
            "failed": int(r["failed"] or 0),
            "cost": float(r["cost"] or 0.0) + float(r["running_cost"] or 0.0),
        }
        for r in rows
    }


def pipelines(conn: sqlite3.Connection) -> list[str]:
    """Every pipeline name with a run (read from the pipeline index alone)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT pipeline FROM runs ORDER BY pipeline")]


def running_costs(conn: sqlite3.Connection) -> dict[str, float]:
    """Per pipeline, what its runs in progress have cost so far (their row says 0 until the end)."""
    rows = conn.execute(
        "SELECT run_id, pipeline FROM runs WHERE status = 'RUNNING' AND cost = 0"
    ).fetchall()
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
    rows = conn.execute(
        "SELECT pipeline, COUNT(*) AS runs, SUM(status = 'SUCCEEDED') AS succeeded,"
        " SUM(status = 'FAILED') AS failed, SUM(cost) AS cost,"
        " SUM(COALESCE(finished_at, started_at) - started_at) AS seconds,"
        " MAX(created_at) AS last FROM runs GROUP BY pipeline"
    ).fetchall()
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


def cost_since(conn: sqlite3.Connection, seconds: float) -> float:
    """What the runs started in the last ``seconds`` cost."""
    row = conn.execute(
        "SELECT SUM(cost) FROM runs WHERE created_at >= ?", (time.time() - seconds,)
    ).fetchone()
    return float(row[0] or 0.0)


def burn_rate(conn: sqlite3.Connection) -> tuple[float, list[dict[str, Any]]]:
    """Dollars per hour of the tasks running now, and those tasks."""
    rows = conn.execute(
        "SELECT r.run_id, r.pipeline, r.pid, r.host, r.status, r.started_at, r.finished_at,"
        " t.task, t.cost_per_hour, t.started_at AS task_started"
        " FROM runs r JOIN tasks t ON t.run_id = r.run_id"
        f" WHERE r.status = 'RUNNING' AND t.status = 'RUNNING' AND t.kind IN {_KINDS}"
        " ORDER BY t.started_at"
    ).fetchall()
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


def most_expensive(conn: sqlite3.Connection, n: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT run_id, pipeline, status, created_at, cost FROM runs WHERE cost > 0"
        " ORDER BY cost DESC LIMIT ?",
        (n,),
    ).fetchall()
    return [dict(r) for r in rows]
