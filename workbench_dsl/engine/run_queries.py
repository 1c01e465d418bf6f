"""The run store's read queries for people: pages of runs and tasks, counts, costs.

``workbench runs`` and the ``workbench ui`` pages read the run store only
through these functions and :class:`~workbench_dsl.engine.store.RunStore`, so
the SQL over ``runs.db`` lives beside the schema it depends on. Every list is
paged or bounded: a run of 10,000 tasks is shown a page at a time, its counts
come from one aggregate query, and no query loads every task's inputs and outputs.

Lists of runs read one page through an index (``runs_created``,
``runs_pipeline_created``, ``runs_status_created``) and then the task counts of
that page's runs only (the ``tasks`` primary key starts with ``run_id``). A task
costs its duration times its compute profile's cost per hour; a run the sum of its
tasks; a pipeline the sum of its runs.
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

#: Task kinds that ran (or would run) a program; DAGs, loops and iterations only group them.
EXECUTOR_KINDS = ("container", "importer", "stub")
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
SINCE = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
_RUN_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_KINDS = "(" + ",".join(f"'{k}'" for k in EXECUTOR_KINDS) + ")"
#: The columns a task's page row needs (never a task's inputs; outputs only on request).
_TASK_COLS = (
    "task, parent, kind, component, status, cached, reused, attempts, started_at, finished_at,"
    " duration_s, cost_per_hour, cost, error, log_path, status_line, status_file, seq"
)
_ORDER = " ORDER BY started_at IS NULL, started_at, seq, task"


# -- one run's tasks ----------------------------------------------------------------------------


_SQL_MAX = 2**63 - 1


def sql_count(n: int) -> int:
    """A LIMIT or OFFSET SQLite takes: 0 and up, at most its largest integer.

    (``--offset 99999999999999999999999`` was an OverflowError: an internal error.)
    """
    return min(max(0, int(n)), _SQL_MAX)


def task_page(
    conn: sqlite3.Connection,
    run_id: str,
    limit: int | None,
    offset: int = 0,
    *,
    outputs: bool = True,
) -> list[sqlite3.Row]:
    """Executor tasks of a run in the order they started, ``limit`` of them from ``offset``."""
    cols = _TASK_COLS + (", outputs_json" if outputs else "")
    return conn.execute(
        f"SELECT {cols} FROM tasks WHERE run_id=? AND kind IN {_KINDS}{_ORDER} LIMIT ? OFFSET ?",
        (run_id, -1 if limit is None else sql_count(limit), sql_count(offset)),
    ).fetchall()


def tasks_in_status(
    conn: sqlite3.Connection, run_id: str, statuses: tuple[str, ...], limit: int = 200
) -> list[sqlite3.Row]:
    """A run's executor tasks in some statuses (running, failed...), bounded."""
    marks = ",".join("?" * len(statuses))
    return conn.execute(
        f"SELECT {_TASK_COLS}, outputs_json FROM tasks WHERE run_id=? AND kind IN {_KINDS}"
        f" AND status IN ({marks}){_ORDER} LIMIT ?",
        (run_id, *statuses, sql_count(limit)),
    ).fetchall()


def task_totals(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """A run's executor tasks counted: in all, cached, per status, and their cost."""
    rows = conn.execute(
        "SELECT status, COUNT(*) AS n, SUM(cached) AS cached, SUM(cost) AS cost"
        f" FROM tasks WHERE run_id=? AND kind IN {_KINDS} GROUP BY status",
        (run_id,),
    ).fetchall()
    by_status = {str(r["status"]): int(r["n"]) for r in rows}
    return {
        "total": sum(by_status.values()),
        "cached": sum(int(r["cached"] or 0) for r in rows),
        "by_status": by_status,
        "cost": sum(float(r["cost"] or 0.0) for r in rows),
    }


def task_shapes(conn: sqlite3.Connection, run_id: str) -> list[sqlite3.Row]:
    """Every task row of a run with only what a DAG drawing or a timeline needs."""
    return conn.execute(
        "SELECT task, parent, kind, component, status, cached, reused, attempts, started_at,"
        " finished_at, duration_s, cost_per_hour, seq, error, status_line"
        f" FROM tasks WHERE run_id=?{_ORDER}",
        (run_id,),
    ).fetchall()


def task_row(conn: sqlite3.Connection, run_id: str, task: str) -> sqlite3.Row | None:
    """One task's full row (inputs and outputs included)."""
    return conn.execute("SELECT * FROM tasks WHERE run_id=? AND task=?", (run_id, task)).fetchone()


def task_names(conn: sqlite3.Connection, run_id: str, kinds: tuple[str, ...]) -> list[str]:
    marks = ",".join("?" * len(kinds))
    return [
        str(r[0])
        for r in conn.execute(
            f"SELECT task FROM tasks WHERE run_id=? AND kind IN ({marks}){_ORDER}",
            (run_id, *kinds),
        )
    ]


def attempts_of(
    conn: sqlite3.Connection, run_id: str, tasks: list[str] | None = None
) -> list[sqlite3.Row]:
    """A run's attempts (of some tasks only, when given), in the order they started."""
    if tasks is None:
        return conn.execute(
            "SELECT * FROM attempts WHERE run_id=? ORDER BY started_at, task, attempt", (run_id,)
        ).fetchall()
    out: list[sqlite3.Row] = []
    for i in range(0, len(tasks), 500):  # SQLite's limit on bound parameters
        chunk = tasks[i : i + 500]
        out += conn.execute(
            f"SELECT * FROM attempts WHERE run_id=? AND task IN ({','.join('?' * len(chunk))})"
            " ORDER BY started_at, task, attempt",
            (run_id, *chunk),
        ).fetchall()
    return sorted(out, key=lambda a: (a["started_at"] or 0.0, a["task"], a["attempt"]))


def attempt_intervals(conn: sqlite3.Connection, run_id: str) -> list[tuple[float, float | None]]:
    """When each attempt of a run started and ended (None: still running)."""
    return [
        (float(r[0]), None if r[1] is None else float(r[1]))
        for r in conn.execute(
            "SELECT started_at, finished_at FROM attempts WHERE run_id=?"
            " AND started_at IS NOT NULL",
            (run_id,),
        )
    ]


# -- lists of runs ------------------------------------------------------------------------------


def runs_where(pipeline: str, status: str, since: str, run: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of a runs list narrowed by pipeline, status, age and id prefix."""
    clauses: list[str] = []
    args: list[Any] = []
    if pipeline:
        clauses.append("pipeline = ?")
        args.append(pipeline)
    if status in STATUSES:
        clauses.append("status = ?")
        args.append(status)
    if since in SINCE:
        clauses.append("created_at >= ?")
        args.append(time.time() - SINCE[since])
    if run:
        # GLOB (not LIKE) is case-sensitive, so the primary key's index serves it.
        clauses.append("run_id GLOB ?" if _RUN_ID.match(run) else "0")
        if _RUN_ID.match(run):
            args.append(run + "*")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def page_of_runs(
    conn: sqlite3.Connection, where: str, args: list[Any], page: int, size: int
) -> tuple[list[sqlite3.Row], int]:
    """One page of runs, newest first; and how many match."""
    total = conn.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0]
    rows = conn.execute(
        "SELECT run_id, pipeline, status, created_at, started_at, finished_at, cost, pid, host,"
        f" error FROM runs{where} ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
        [*args, sql_count(size), sql_count((page - 1) * size)],
    ).fetchall()
    return rows, int(total)


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


def running_runs_without_cost(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT run_id, pipeline FROM runs WHERE status = 'RUNNING' AND cost = 0"
    ).fetchall()


def pipeline_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Per pipeline: runs, how they ended, cost, run time and the last run."""
    return conn.execute(
        "SELECT pipeline, COUNT(*) AS runs, SUM(status = 'SUCCEEDED') AS succeeded,"
        " SUM(status = 'FAILED') AS failed, SUM(cost) AS cost,"
        " SUM(COALESCE(finished_at, started_at) - started_at) AS seconds,"
        " MAX(created_at) AS last FROM runs GROUP BY pipeline"
    ).fetchall()


def cost_since(conn: sqlite3.Connection, seconds: float) -> float:
    """What the runs started in the last ``seconds`` cost."""
    row = conn.execute(
        "SELECT SUM(cost) FROM runs WHERE created_at >= ?", (time.time() - seconds,)
    ).fetchone()
    return float(row[0] or 0.0)


def running_tasks(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Executor tasks running now in runs marked running, with their run's engine."""
    return conn.execute(
        "SELECT r.run_id, r.pipeline, r.pid, r.host, r.status, r.started_at, r.finished_at,"
        " t.task, t.cost_per_hour, t.started_at AS task_started"
        " FROM runs r JOIN tasks t ON t.run_id = r.run_id"
        f" WHERE r.status = 'RUNNING' AND t.status = 'RUNNING' AND t.kind IN {_KINDS}"
        " ORDER BY t.started_at"
    ).fetchall()


def most_expensive(conn: sqlite3.Connection, n: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT run_id, pipeline, status, created_at, cost FROM runs WHERE cost > 0"
        " ORDER BY cost DESC LIMIT ?",
        (n,),
    ).fetchall()
    return [dict(r) for r in rows]
