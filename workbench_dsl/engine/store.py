"""The run store: runs, tasks, attempts, parameters, artifacts and the cache in SQLite (WAL).

One file, ``<root>/runs.db``, shared by every engine on the machine: several
runs at once, the CLI reading while they write. Each write is one short
transaction (``BEGIN IMMEDIATE`` so writers queue instead of deadlocking),
with a generous busy timeout. An attempt's outputs are committed -- task row,
attempt row, artifact rows, cache entry -- in one transaction, after its
artifacts are safely in the content-addressed store, so a SIGKILL at any
moment leaves either the whole attempt or none of it.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from workbench_dsl import _procs, _sqlite
from workbench_dsl.engine import run_queries as rq
from workbench_dsl.errors import UsageError

#: 2 added ``runs.experiment`` (see :meth:`RunStore._migrate`).
SCHEMA_VERSION = 2

#: The experiment of a run started without one (KFP's default experiment's name).
DEFAULT_EXPERIMENT = "Default"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '2');
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    source TEXT,
    spec_text TEXT NOT NULL,
    spec_sha256 TEXT,
    options_json TEXT NOT NULL DEFAULT '{}',
    pid INTEGER,
    host TEXT,
    error TEXT,
    outputs_json TEXT,
    cost REAL NOT NULL DEFAULT 0,
    experiment TEXT NOT NULL DEFAULT 'Default'
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
CREATE INDEX IF NOT EXISTS runs_experiment_created ON runs(experiment, created_at);
CREATE INDEX IF NOT EXISTS runs_pipeline_created ON runs(pipeline, created_at);
CREATE INDEX IF NOT EXISTS runs_status_created ON runs(status, created_at);
CREATE TABLE IF NOT EXISTS run_parameters(
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value_json TEXT NOT NULL,
    PRIMARY KEY(run_id, name)
);
CREATE TABLE IF NOT EXISTS tasks(
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    parent TEXT,
    kind TEXT NOT NULL,
    component TEXT,
    executor TEXT,
    status TEXT NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    duration_s REAL,
    cost_per_hour REAL NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    error TEXT,
    log_path TEXT,
    status_file TEXT,
    status_line TEXT,
    input_key TEXT,
    cache_key TEXT,
    inputs_json TEXT,
    outputs_json TEXT,
    PRIMARY KEY(run_id, task)
);
CREATE TABLE IF NOT EXISTS attempts(
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    duration_s REAL,
    exit_code INTEGER,
    error TEXT,
    log_path TEXT,
    workdir TEXT,
    PRIMARY KEY(run_id, task, attempt)
);
CREATE TABLE IF NOT EXISTS artifacts(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    name TEXT NOT NULL,
    uri TEXT NOT NULL,
    size INTEGER,
    sha256 TEXT,
    type TEXT,
    metadata_json TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts(run_id, task);
CREATE INDEX IF NOT EXISTS artifacts_name_created ON artifacts(name, created_at);
CREATE TABLE IF NOT EXISTS parsed_specs(
    spec_sha256 TEXT PRIMARY KEY,
    documents_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cache(
    key TEXT PRIMARY KEY,
    pipeline TEXT,
    task TEXT,
    component TEXT,
    run_id TEXT,
    outputs_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_hit REAL,
    hits INTEGER NOT NULL DEFAULT 0
);
"""

TERMINAL_RUN = ("SUCCEEDED", "FAILED", "CANCELLED")


# json.dumps with options builds an encoder per call; one built once writes the same text.
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def _dumps(v: Any) -> str:
    return _ENCODER.encode(v)


def pid_alive(pid: int | None) -> bool:
    return _procs.alive(pid)


class RunStore:
    """Access to ``runs.db``; one instance per thread that writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = _sqlite.connect(path, timeout=60.0)
        # Old stores first: the schema's indexes name columns that older versions lack.
        self._migrate()
        _sqlite.migrate(self.conn, _SCHEMA)

    def _migrate(self) -> None:
        """Bring a store made by an older version up to :data:`SCHEMA_VERSION` (additive only).

        Guarded by the version in ``meta`` and re-checked inside the write
        transaction, so engines that open an old store at once migrate it once.
        A new store has nothing to migrate: the schema creates it current.
        """
        if not self._has_table("runs") or self._schema_version() >= SCHEMA_VERSION:
            return
        with _sqlite.transaction(self.conn) as c:
            if self._schema_version() >= SCHEMA_VERSION:
                return
            cols = {r["name"] for r in c.execute("PRAGMA table_info(runs)")}
            if "experiment" not in cols:  # version 2
                c.execute(
                    "ALTER TABLE runs ADD COLUMN experiment TEXT NOT NULL DEFAULT "
                    f"'{DEFAULT_EXPERIMENT}'"
                )
            c.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _has_table(self, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
        ).fetchone()
        return row is not None

    def _schema_version(self) -> int:
        if not self._has_table("meta"):
            return 1
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row is not None and str(row[0]).isdigit() else 1

    def close(self) -> None:
        self.conn.close()

    def tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``)."""
        return _sqlite.transaction(self.conn)

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        pipeline: str,
        spec_text: str,
        spec_sha256: str,
        params: dict[str, Any],
        options: dict[str, Any],
        source: str | None,
        experiment: str = DEFAULT_EXPERIMENT,
    ) -> None:
        experiment = check_experiment_name(experiment)
        now = time.time()
        with self.tx() as c:
            c.execute(
                "INSERT INTO runs(run_id, pipeline, status, created_at, started_at, source,"
                " spec_text, spec_sha256, options_json, pid, host, experiment)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    pipeline,
                    "RUNNING",
                    now,
                    now,
                    source,
                    spec_text,
                    spec_sha256,
                    _dumps(options),
                    os.getpid(),
                    socket.gethostname(),
                    experiment,
                ),
            )
            c.executemany(
                "INSERT INTO run_parameters(run_id, name, value_json) VALUES(?,?,?)",
                [(run_id, k, json.dumps(v)) for k, v in params.items()],
            )

    def claim_for_resume(self, run_id: str) -> sqlite3.Row:
        """Mark a run RUNNING under this process; refuse while another engine runs it."""
        with self.tx() as c:
            row = c.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise UsageError(f"no run {run_id!r}")
            if row["status"] == "SUCCEEDED":
                raise UsageError(f"run {run_id} already succeeded; nothing to resume")
            if (
                row["status"] == "RUNNING"
                and row["host"] == socket.gethostname()
                and row["pid"] != os.getpid()
                and pid_alive(row["pid"])
            ):
                raise UsageError(
                    f"run {run_id} is still running (engine pid {row['pid']}); "
                    f"cancel it first with: workbench runs cancel {run_id}"
                )
            c.execute(
                "UPDATE runs SET status='RUNNING', pid=?, host=?, error=NULL, finished_at=NULL"
                " WHERE run_id=?",
                (os.getpid(), socket.gethostname(), run_id),
            )
            return row

    def lose_open_attempts(self, run_id: str) -> None:
        """Attempts a killed engine left open are LOST (a resume starts them again)."""
        with self.tx() as c:
            c.execute(
                "UPDATE attempts SET status='LOST', error='the engine stopped during this attempt'"
                " WHERE run_id=? AND status='RUNNING'",
                (run_id,),
            )

    def cancel_abandoned(self, run_id: str) -> None:
        """A run whose engine is gone is CANCELLED, with its running tasks and open attempts."""
        with self.tx() as c:
            c.execute(
                "UPDATE runs SET status='CANCELLED', error='cancelled', finished_at=?"
                " WHERE run_id=?",
                (time.time(), run_id),
            )
            c.execute(
                "UPDATE tasks SET status='CANCELLED' WHERE run_id=? AND status='RUNNING'",
                (run_id,),
            )
            c.execute(
                "UPDATE attempts SET status='LOST', error='the engine stopped during this attempt'"
                " WHERE run_id=? AND status='RUNNING'",
                (run_id,),
            )

    def finish_run(
        self, run_id: str, status: str, error: str | None, outputs: dict[str, Any], cost: float
    ) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE runs SET status=?, error=?, outputs_json=?, cost=?, finished_at=?"
                " WHERE run_id=?",
                (status, error, _dumps(outputs), cost, time.time(), run_id),
            )

    def run_parameters(self, run_id: str) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT name, value_json FROM run_parameters WHERE run_id=?", (run_id,)
        ).fetchall()
        return {r["name"]: json.loads(r["value_json"]) for r in rows}

    def get_run(self, run_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()

    def find_run(self, prefix: str) -> sqlite3.Row:
        """The run whose id is ``prefix`` or starts with it (unique), else a UsageError."""
        prefix = prefix.strip()
        if not prefix:
            raise UsageError("give a run id (or a unique prefix of one)")
        exact = self.get_run(prefix)
        if exact is not None:
            return exact
        # A plain comparison, not LIKE: a prefix of 100,000 characters made SQLite refuse
        # the pattern ("LIKE or GLOB pattern too complex"); case-insensitive, as LIKE was.
        rows = self.conn.execute(
            "SELECT * FROM runs WHERE lower(substr(run_id, 1, ?)) = lower(?)"
            " ORDER BY created_at DESC LIMIT 6",
            (len(prefix), prefix),
        ).fetchall()
        shown = (
            repr(prefix)
            if len(prefix) <= 40
            else f"{prefix[:40]!r}... ({len(prefix):,} characters)"
        )
        if not rows:
            raise UsageError(f"no run matches {shown} (see: workbench runs list)")
        if len(rows) > 1:
            ids = ", ".join(r["run_id"] for r in rows[:5])
            raise UsageError(f"{shown} matches several runs ({ids}); give more of the id")
        return rows[0]

    def list_runs(self, limit: int = 20) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT run_id, pipeline, status, created_at, started_at, finished_at, error, cost,"
            " pid, host FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (rq.sql_count(limit),),
        ).fetchall()

    def set_run_pid(self, run_id: str, pid: int | None) -> None:
        with self.tx() as c:
            c.execute("UPDATE runs SET pid=? WHERE run_id=?", (pid, run_id))

    # -- tasks ------------------------------------------------------------------------------

    def upsert_task(self, run_id: str, task: str, fields: dict[str, Any]) -> None:
        with self.tx() as c:
            _upsert(c, run_id, task, fields)

    def upsert_tasks(self, run_id: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
        if not rows:
            return
        with self.tx() as c:
            for task, fields in rows:
                _upsert(c, run_id, task, fields)

    def record_batch(
        self, run_id: str, rows: list[tuple[str, dict[str, Any]]], cache_hits: list[str]
    ) -> None:
        """Task rows changed and cache entries hit since the last batch, in one transaction."""
        now = time.time()
        with self.tx() as c:
            _upsert_many(c, run_id, rows)
            if cache_hits:
                c.executemany(
                    "UPDATE cache SET hits=hits+1, last_hit=? WHERE key=?",
                    [(now, k) for k in cache_hits],
                )

    def start_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        log_path: str,
        workdir: str,
        task_fields: dict[str, Any],
    ) -> None:
        now = time.time()
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO attempts(run_id, task, attempt, status, started_at,"
                " log_path, workdir) VALUES(?,?,?,?,?,?,?)",
                (run_id, task, attempt, "RUNNING", now, log_path, workdir),
            )
            _upsert(c, run_id, task, task_fields)

    def finish_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        status: str,
        duration_s: float,
        exit_code: int | None,
        error: str | None,
        task_fields: dict[str, Any] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
        cache_entry: dict[str, Any] | None = None,
    ) -> None:
        """Close an attempt; with ``task_fields`` etc., commit its outputs in the same transaction."""
        now = time.time()
        with self.tx() as c:
            c.execute(
                "UPDATE attempts SET status=?, finished_at=?, duration_s=?, exit_code=?, error=?"
                " WHERE run_id=? AND task=? AND attempt=?",
                (status, now, duration_s, exit_code, error, run_id, task, attempt),
            )
            if task_fields:
                _upsert(c, run_id, task, task_fields)
            for a in artifacts or []:
                c.execute(
                    "INSERT INTO artifacts(run_id, task, name, uri, size, sha256, type,"
                    " metadata_json, created_at) VALUES(?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        task,
                        a["name"],
                        a["uri"],
                        a.get("size"),
                        a.get("sha256"),
                        (a.get("type") or {}).get("schemaTitle"),
                        _dumps(a.get("metadata") or {}),
                        now,
                    ),
                )
            if cache_entry:
                _cache_insert(c, run_id, task, cache_entry, now)

    def tasks(self, run_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM tasks WHERE run_id=? ORDER BY started_at IS NULL, started_at, seq, task",
            (run_id,),
        ).fetchall()

    def resume_state(self, run_id: str) -> dict[str, sqlite3.Row]:
        """What a resume needs of each executor task of a run (never its inputs)."""
        rows = self.conn.execute(
            "SELECT task, status, input_key, attempts, duration_s,"
            " CASE WHEN status='SUCCEEDED' THEN outputs_json END AS outputs_json"
            " FROM tasks WHERE run_id=? AND kind IN ('container', 'importer', 'stub')",
            (run_id,),
        ).fetchall()
        return {r["task"]: r for r in rows}

    def completed_tasks(self, run_id: str) -> dict[str, sqlite3.Row]:
        rows = self.conn.execute(
            "SELECT * FROM tasks WHERE run_id=? AND status='SUCCEEDED' AND outputs_json IS NOT NULL",
            (run_id,),
        ).fetchall()
        return {r["task"]: r for r in rows}

    def attempts(self, run_id: str, task: str | None = None) -> list[sqlite3.Row]:
        if task is None:
            return self.conn.execute(
                "SELECT * FROM attempts WHERE run_id=? ORDER BY started_at, task, attempt",
                (run_id,),
            ).fetchall()
        return self.conn.execute(
            "SELECT * FROM attempts WHERE run_id=? AND task=? ORDER BY attempt", (run_id, task)
        ).fetchall()

    def artifacts(self, run_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM artifacts WHERE run_id=? ORDER BY id", (run_id,)
        ).fetchall()

    # -- parsed specs -------------------------------------------------------------------------

    def parsed_spec(self, spec_sha256: str) -> list[dict[str, Any]] | None:
        """The documents of a spec text parsed before (by its sha256), or None."""
        row = self.conn.execute(
            "SELECT documents_json FROM parsed_specs WHERE spec_sha256=?", (spec_sha256,)
        ).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def keep_parsed_spec(self, spec_sha256: str, documents_json: str) -> None:
        """Keep a spec text's parsed documents as JSON, so a rerun need not parse its YAML."""
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO parsed_specs(spec_sha256, documents_json, created_at)"
                " VALUES(?,?,?)",
                (spec_sha256, documents_json, time.time()),
            )

    # -- cache ------------------------------------------------------------------------------

    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT outputs_json FROM cache WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row["outputs_json"])

    def cache_put(self, run_id: str, task: str, entry: dict[str, Any]) -> None:
        """A cache entry of a task that ran no attempt (kfp-kubernetes' CreatePVC)."""
        with self.tx() as c:
            _cache_insert(c, run_id, task, entry, time.time())

    def cache_hit(self, key: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE cache SET hits=hits+1, last_hit=? WHERE key=?", (time.time(), key))

    def cache_drop(self, key: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM cache WHERE key=?", (key,))

    def cache_list(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM cache ORDER BY created_at DESC").fetchall()

    def cache_clear(self) -> int:
        with self.tx() as c:
            n = c.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
            c.execute("DELETE FROM cache")
        return int(n)

    # -- experiments and run queries (workbench experiments, runs compare, the client) ---------

    def query_runs(
        self,
        *,
        experiment: str | None = None,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 20,
    ) -> list[sqlite3.Row]:
        """Runs newest first, each filter applied when given (``status`` as stored)."""
        where, args = _run_filters(experiment=experiment, pipeline=pipeline, status=status)
        sql = (
            "SELECT run_id, pipeline, experiment, status, created_at, started_at, finished_at,"
            f" error, cost, pid, host, source FROM runs{where}"
            " ORDER BY created_at DESC, rowid DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args.append(rq.sql_count(limit))
        return self.conn.execute(sql, args).fetchall()

    def task_metrics(self, kinds: tuple[str, ...] = ("container", "importer")) -> list[sqlite3.Row]:
        """Every task of ``kinds`` with its run's pipeline: ``pipeline``, ``component``,
        ``status``, ``duration_s``, ``attempts``, ``cached``, ``cost_per_hour``, and its
        run's ``run_status``, ``run_pid``, ``run_host`` (to tell a run in flight from one
        whose engine died) -- for the Prometheus exposition, read at scrape time."""
        marks = ",".join("?" * len(kinds))
        return self.conn.execute(
            "SELECT r.pipeline, COALESCE(t.component, t.task) AS component, t.status,"
            " t.duration_s, t.attempts, t.cached, t.cost_per_hour,"
            " r.status AS run_status, r.pid AS run_pid, r.host AS run_host"
            f" FROM tasks t JOIN runs r ON r.run_id=t.run_id WHERE t.kind IN ({marks})",
            kinds,
        ).fetchall()

    def experiments(self) -> list[sqlite3.Row]:
        """One row per experiment: ``experiment``, ``runs``, ``pipelines`` (comma-joined),
        ``first_at``, ``last_at``, and the count of runs per stored status."""
        return self.conn.execute(
            "SELECT experiment, COUNT(*) AS runs,"
            " GROUP_CONCAT(DISTINCT pipeline) AS pipelines,"
            " MIN(created_at) AS first_at, MAX(created_at) AS last_at,"
            " SUM(status='SUCCEEDED') AS succeeded, SUM(status='FAILED') AS failed,"
            " SUM(status='RUNNING') AS running, SUM(status='CANCELLED') AS cancelled"
            " FROM runs GROUP BY experiment ORDER BY last_at DESC"
        ).fetchall()

    def experiment_of(self, run_id: str) -> str:
        row = self.conn.execute("SELECT experiment FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return DEFAULT_EXPERIMENT if row is None else str(row[0])


def _run_filters(**filters: str | None) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or "") over ``runs`` columns, for the filters that are set."""
    parts, args = [], []
    for column in ("experiment", "pipeline", "status"):
        value = filters.get(column)
        if value is not None:
            parts.append(f"{column}=?")
            args.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), args


def open_reader(path: Path) -> RunStore:
    """A store whose connection can only read (``PRAGMA query_only``): for the Python client.

    Readers never block the engines writing the same file (WAL). A store made by an
    older version is migrated first, before the connection turns read-only.

    Raises:
        UsageError: there is no run store at ``path`` yet.
    """
    if not path.exists():
        raise UsageError(f"no runs yet at {path.parent} (start one with: workbench run PIPELINE)")
    store = RunStore(path)
    store.conn.execute("PRAGMA query_only=ON")
    return store


def check_experiment_name(name: str) -> str:
    """The name stripped, or a UsageError saying what a valid experiment name is."""
    value = name.strip()
    if not value or len(value) > 200 or any(ord(ch) < 32 for ch in value):
        raise UsageError(
            f"bad experiment name {name!r}: give 1-200 printable characters, e.g. --experiment churn"
        )
    return value


def _encode(col: str, value: Any) -> Any:
    # Called for every column of every row a batch writes: type() tests, not isinstance.
    kind = type(value)
    if kind is bool:
        return int(value)
    if kind is dict or kind is list:
        return _dumps(value)  # only the *_json columns hold documents
    return value


def _upsert(c: sqlite3.Connection, run_id: str, task: str, fields: dict[str, Any]) -> None:
    """Update a task row's given columns, inserting the row first if it is new."""
    if fields:
        sets = ", ".join(f"{k}=?" for k in fields)
        cur = c.execute(
            f"UPDATE tasks SET {sets} WHERE run_id=? AND task=?",
            [*(_encode(k, v) for k, v in fields.items()), run_id, task],
        )
        if cur.rowcount:
            return
    row = {"kind": "container", "status": "PENDING", **fields}
    cols = ["run_id", "task", *row]
    c.execute(
        f"INSERT INTO tasks({', '.join(cols)}) VALUES({', '.join('?' * len(cols))})",
        [run_id, task, *(_encode(k, v) for k, v in row.items())],
    )


def _upsert_many(
    c: sqlite3.Connection, run_id: str, rows: list[tuple[str, dict[str, Any]]]
) -> None:
    """:func:`_upsert` for many rows: one ``INSERT ... ON CONFLICT DO UPDATE`` per column set."""
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    batches: dict[tuple[str, ...], list[list[Any]]] = {}  # by the row's own columns
    dumps = _dumps
    for task, fields in rows:
        full = {"kind": "container", "status": "PENDING", **fields}
        batch = batches.get(names := tuple(fields))
        if batch is None:
            # The columns to insert, then (after a marker) the ones an existing row takes.
            batch = batches[names] = groups.setdefault((*full, "|", *names), [])
        # _encode inlined, as one comprehension: this runs for every column of every row.
        batch.append(
            [
                run_id,
                task,
                *[
                    int(v)
                    if (kind := type(v)) is bool
                    else (dumps(v) if kind is dict or kind is list else v)
                    for v in full.values()
                ],
            ]
        )
    for key, batch in groups.items():
        cut = key.index("|")
        cols, updated = key[:cut], key[cut + 1 :]
        sets = ", ".join(f"{k}=excluded.{k}" for k in updated) or "task=task"
        c.executemany(
            f"INSERT INTO tasks(run_id, task, {', '.join(cols)})"
            f" VALUES({', '.join('?' * (len(cols) + 2))})"
            f" ON CONFLICT(run_id, task) DO UPDATE SET {sets}",
            batch,
        )


def _cache_insert(
    c: sqlite3.Connection, run_id: str, task: str, entry: dict[str, Any], now: float
) -> None:
    c.execute(
        "INSERT OR REPLACE INTO cache(key, pipeline, task, component, run_id,"
        " outputs_json, created_at, hits) VALUES(?,?,?,?,?,?,?,0)",
        (
            entry["key"],
            entry.get("pipeline"),
            task,
            entry.get("component"),
            run_id,
            _dumps(entry["outputs"]),
            now,
        ),
    )
