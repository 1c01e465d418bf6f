"""Schedules and their ticks, in tables of their own in the run store's SQLite file.

``schedules`` holds what to run and when; ``schedule_ticks`` holds one row per tick
that was started or skipped, keyed by the tick's idempotency key
``<schedule id>@<tick time>``. A tick is claimed by inserting that row inside a
``BEGIN IMMEDIATE`` transaction that also counts the runs in flight, so two
schedulers (or one restarted) can never start the same tick twice, nor more runs
than ``max_concurrency``.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from workbench_dsl import _sqlite
from workbench_dsl.errors import UsageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules(
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    workdir TEXT NOT NULL,
    params_json TEXT NOT NULL DEFAULT '{}',
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    catchup INTEGER NOT NULL DEFAULT 1,
    max_concurrency INTEGER NOT NULL DEFAULT 1,
    paused INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    start_after TEXT NOT NULL,
    last_tick TEXT,
    experiment TEXT NOT NULL DEFAULT 'Default'
);
CREATE TABLE IF NOT EXISTS schedule_ticks(
    key TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    schedule TEXT NOT NULL,
    tick TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    pid_start TEXT,
    run_id TEXT,
    output TEXT,
    log TEXT,
    reason TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS schedule_ticks_by_schedule ON schedule_ticks(schedule_id, tick);
"""

ACTIVE = ("STARTING", "RUNNING")


class RunStoreTables:
    """Tables of their own in the run store's file, as the schedule and trigger stores keep them.

    One connection (see ``_sqlite``): autocommit (each write is an explicit :meth:`tx`),
    WAL, a 30 s busy timeout, rows by name; the schema is migrated on open. One store is
    used by one thread at a time (check_same_thread only guards against misuse).
    """

    #: The tables and indexes (``CREATE ... IF NOT EXISTS``).
    SCHEMA: ClassVar[str]
    #: ``(table, column, declaration)`` of each column added after its table's first release.
    ADDED_COLUMNS: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _sqlite.connect(path, timeout=30.0)
        for table, column, decl in self.ADDED_COLUMNS:
            _sqlite.add_column(self._db, table, column, decl)
        _sqlite.migrate(self._db, self.SCHEMA)

    def close(self) -> None:
        self._db.close()

    def tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short ``BEGIN IMMEDIATE`` write transaction (writers queue instead of
        deadlocking): the claim of a tick or an event happens inside."""
        return _sqlite.transaction(self._db)


@dataclass
class Schedule:
    """One local schedule."""

    name: str
    id: str
    pipeline: str
    workdir: str
    params: dict[str, str]
    cron: str
    timezone: str
    catchup: bool
    max_concurrency: int
    paused: bool
    created_at: float
    updated_at: float
    start_after: str
    last_tick: str | None = None
    experiment: str = "Default"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": "local",
            "pipeline": self.pipeline,
            "workdir": self.workdir,
            "params": self.params,
            "cron": self.cron,
            "timezone": self.timezone,
            "catchup": self.catchup,
            "max_concurrency": self.max_concurrency,
            "paused": self.paused,
            "last_tick": self.last_tick,
            "experiment": self.experiment,
            **self.extra,
        }


def _schedule(row: sqlite3.Row) -> Schedule:
    return Schedule(
        name=row["name"],
        id=row["id"],
        pipeline=row["pipeline"],
        workdir=row["workdir"],
        params=json.loads(row["params_json"] or "{}"),
        cron=row["cron"],
        timezone=row["timezone"],
        catchup=bool(row["catchup"]),
        max_concurrency=int(row["max_concurrency"]),
        paused=bool(row["paused"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        start_after=row["start_after"],
        last_tick=row["last_tick"],
        experiment=row["experiment"],
    )


class ScheduleStore(RunStoreTables):
    """The schedule tables in ``runs.db`` (WAL, busy timeout, short transactions)."""

    SCHEMA = _SCHEMA
    # Added with experiments: a schedules table made before gets the column.
    ADDED_COLUMNS = (("schedules", "experiment", "TEXT NOT NULL DEFAULT 'Default'"),)

    # -- schedules ----------------------------------------------------------------------

    def add(self, s: Schedule) -> Schedule:
        s.id = s.id or uuid.uuid4().hex[:12]
        try:
            with self.tx() as c:
                c.execute(
                    "INSERT INTO schedules(name, id, pipeline, workdir, params_json, cron, timezone,"
                    " catchup, max_concurrency, paused, created_at, updated_at, start_after,"
                    " last_tick, experiment) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        s.name,
                        s.id,
                        s.pipeline,
                        s.workdir,
                        json.dumps(s.params, sort_keys=True),
                        s.cron,
                        s.timezone,
                        int(s.catchup),
                        s.max_concurrency,
                        int(s.paused),
                        s.created_at,
                        s.updated_at,
                        s.start_after,
                        s.last_tick,
                        s.experiment,
                    ),
                )
        except sqlite3.IntegrityError:
            raise UsageError(
                f"a schedule named {s.name!r} exists; pick another --name, or change it with "
                f"`workbench schedule update {s.name} ...`"
            ) from None
        return s

    def get(self, name: str) -> Schedule:
        row = self._db.execute("SELECT * FROM schedules WHERE name=?", (name,)).fetchone()
        if row is None:
            known = ", ".join(s.name for s in self.all()) or "none"
            raise UsageError(f"no schedule named {name!r} (schedules: {known})")
        return _schedule(row)

    def all(self) -> list[Schedule]:
        rows = self._db.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_schedule(r) for r in rows]

    def update(self, name: str, **fields: Any) -> Schedule:
        self.get(name)
        cols = {"params": "params_json"}
        sets, values = [], []
        for k, v in fields.items():
            col = cols.get(k, k)
            if k == "params":
                v = json.dumps(v, sort_keys=True)
            elif isinstance(v, bool):
                v = int(v)
            sets.append(f"{col}=?")
            values.append(v)
        sets.append("updated_at=?")
        values.append(time.time())
        with self.tx() as c:
            c.execute(f"UPDATE schedules SET {', '.join(sets)} WHERE name=?", (*values, name))
        return self.get(name)

    def delete(self, name: str) -> None:
        s = self.get(name)
        with self.tx() as c:
            c.execute("DELETE FROM schedules WHERE name=?", (name,))
            # Finished ticks go; ticks in flight stay until the scheduler has seen them end.
            c.execute(
                f"DELETE FROM schedule_ticks WHERE schedule_id=? AND status NOT IN {ACTIVE}",
                (s.id,),
            )

    # -- ticks --------------------------------------------------------------------------

    def claim(self, s: Schedule, tick: str, *, output: str, log: str) -> str:
        """Claim ``tick`` for starting.

        Returns:
            ``"claimed"`` (start it), ``"taken"`` (claimed before: never start it again) or
            ``"busy"`` (the schedule is at its ``max_concurrency``: try again later).
        """
        key = f"{s.id}@{tick}"
        with self.tx() as c:
            if c.execute("SELECT 1 FROM schedule_ticks WHERE key=?", (key,)).fetchone():
                return "taken"
            running = c.execute(
                f"SELECT COUNT(*) FROM schedule_ticks WHERE schedule_id=? AND status IN {ACTIVE}",
                (s.id,),
            ).fetchone()[0]
            if running >= s.max_concurrency:
                return "busy"
            c.execute(
                "INSERT INTO schedule_ticks(key, schedule_id, schedule, tick, status, output, log,"
                " created_at) VALUES (?,?,?,?,?,?,?,?)",
                (key, s.id, s.name, tick, "STARTING", output, log, time.time()),
            )
            c.execute(
                "UPDATE schedules SET last_tick=? WHERE id=? AND (last_tick IS NULL OR last_tick<?)",
                (tick, s.id, tick),
            )
        return "claimed"

    def skip(self, s: Schedule, ticks: list[str], reason: str) -> None:
        """Record ticks passed over (catch-up off): they will never run."""
        if not ticks:
            return
        now = time.time()
        with self.tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO schedule_ticks(key, schedule_id, schedule, tick, status,"
                " reason, created_at, finished_at) VALUES (?,?,?,?,?,?,?,?)",
                [(f"{s.id}@{t}", s.id, s.name, t, "SKIPPED", reason, now, now) for t in ticks],
            )
            c.execute(
                "UPDATE schedules SET last_tick=? WHERE id=? AND (last_tick IS NULL OR last_tick<?)",
                (ticks[-1], s.id, ticks[-1]),
            )

    def set_tick(self, key: str, **fields: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.tx() as c:
            c.execute(f"UPDATE schedule_ticks SET {sets} WHERE key=?", (*fields.values(), key))

    def active_ticks(self, schedule_id: str | None = None) -> list[sqlite3.Row]:
        q = f"SELECT * FROM schedule_ticks WHERE status IN {ACTIVE}"
        args: tuple[Any, ...] = ()
        if schedule_id:
            q += " AND schedule_id=?"
            args = (schedule_id,)
        return self._db.execute(q + " ORDER BY tick", args).fetchall()

    def ticks(self, schedule_id: str, limit: int = 20) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM schedule_ticks WHERE schedule_id=? ORDER BY tick DESC LIMIT ?",
            (schedule_id, limit),
        ).fetchall()
