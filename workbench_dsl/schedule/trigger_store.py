"""Triggers and their firings, in tables of their own in the run store's SQLite file.

``triggers`` holds what to run on which event; ``trigger_firings`` one row per event
that was started or passed over, keyed by the event's idempotency key; ``trigger_files``
the content digest last seen of each file a ``dataset:`` trigger watches; ``trigger_drift``
the drift episode a ``drift:`` trigger is in (the revision, the episode's number and
whether the endpoint is drifted now), moved on in the transaction that claims its firing. An event is
claimed by inserting its firing row inside a ``BEGIN IMMEDIATE`` transaction that also
counts the runs in flight (and, for a file, moves its recorded digest on), exactly as a
schedule's tick is claimed: a restarted scheduler, or two racing ones, start an event
at most once.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import Any

from workbench_dsl.errors import UsageError
from workbench_dsl.schedule.store import ACTIVE, RunStoreTables
from workbench_dsl.schedule.trigger_model import FileSeen, Trigger, trigger_from_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS triggers(
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    workdir TEXT NOT NULL,
    params_json TEXT NOT NULL DEFAULT '{}',
    event TEXT NOT NULL,
    event_param TEXT,
    max_age_s REAL,
    max_catchup INTEGER NOT NULL DEFAULT 5,
    max_concurrency INTEGER NOT NULL DEFAULT 1,
    paused INTEGER NOT NULL DEFAULT 0,
    experiment TEXT NOT NULL DEFAULT 'Default',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    after REAL NOT NULL,
    options_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS trigger_firings(
    key TEXT PRIMARY KEY,
    trigger_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    event TEXT NOT NULL,
    value TEXT,
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
CREATE INDEX IF NOT EXISTS trigger_firings_by_trigger ON trigger_firings(trigger_id, created_at);
CREATE TABLE IF NOT EXISTS trigger_files(
    trigger_id TEXT NOT NULL,
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    gen INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(trigger_id, path)
);
CREATE TABLE IF NOT EXISTS trigger_drift(
    trigger_id TEXT PRIMARY KEY,
    revision TEXT NOT NULL,
    episode INTEGER NOT NULL,
    drifted INTEGER NOT NULL,
    changed_at REAL NOT NULL
);
"""

#: Firings kept per trigger (newest); older finished ones are dropped so the table stays bounded.
HISTORY = 500


class TriggerStore(RunStoreTables):
    """The trigger tables in ``runs.db`` (same connection setup as the schedules')."""

    SCHEMA = _SCHEMA
    ADDED_COLUMNS = (("triggers", "options_json", "TEXT NOT NULL DEFAULT '{}'"),)

    # -- triggers -----------------------------------------------------------------------

    def add_trigger(self, t: Trigger, baseline: list[FileSeen] | None = None) -> Trigger:
        """Insert ``t``; ``baseline`` is the data already there (it does not fire)."""
        t.id = t.id or uuid.uuid4().hex[:12]
        try:
            with self.tx() as c:
                c.execute(
                    "INSERT INTO triggers(name, id, pipeline, workdir, params_json, event,"
                    " event_param, max_age_s, max_catchup, max_concurrency, paused, experiment,"
                    " created_at, updated_at, after, options_json)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        t.name,
                        t.id,
                        t.pipeline,
                        t.workdir,
                        json.dumps(t.params, sort_keys=True),
                        str(t.event),
                        t.event_param,
                        t.max_age_s,
                        t.max_catchup,
                        t.max_concurrency,
                        int(t.paused),
                        t.experiment,
                        t.created_at,
                        t.updated_at,
                        t.after,
                        json.dumps(t.options(), sort_keys=True),
                    ),
                )
                c.executemany(
                    "INSERT INTO trigger_files(trigger_id, path, digest, size, mtime_ns,"
                    " changed_at) VALUES (?,?,?,?,?,?)",
                    [
                        (t.id, f.path, f.digest, f.size, f.mtime_ns, f.mtime_ns / 1e9)
                        for f in baseline or []
                    ],
                )
        except sqlite3.IntegrityError:
            raise UsageError(
                f"a trigger named {t.name!r} exists; pick another --name, or delete it with "
                f"`workbench trigger delete {t.name}`"
            ) from None
        return t

    def get_trigger(self, name: str) -> Trigger:
        row = self._db.execute("SELECT * FROM triggers WHERE name=?", (name,)).fetchone()
        if row is None:
            known = ", ".join(t.name for t in self.triggers()) or "none"
            raise UsageError(f"no trigger named {name!r} (triggers: {known})")
        return trigger_from_row(row)

    def triggers(self) -> list[Trigger]:
        rows = self._db.execute("SELECT * FROM triggers ORDER BY name").fetchall()
        return [trigger_from_row(r) for r in rows]

    def set_paused(self, name: str, paused: bool) -> Trigger:
        """Pause, or resume from now: events that happened while paused never fire."""
        self.get_trigger(name)
        now = time.time()
        with self.tx() as c:
            if paused:
                c.execute("UPDATE triggers SET paused=1, updated_at=? WHERE name=?", (now, name))
            else:
                c.execute(
                    "UPDATE triggers SET paused=0, updated_at=?, after=? WHERE name=?",
                    (now, now, name),
                )
        return self.get_trigger(name)

    def delete_trigger(self, name: str) -> None:
        t = self.get_trigger(name)
        with self.tx() as c:
            c.execute("DELETE FROM triggers WHERE name=?", (name,))
            c.execute("DELETE FROM trigger_files WHERE trigger_id=?", (t.id,))
            c.execute("DELETE FROM trigger_drift WHERE trigger_id=?", (t.id,))
            # Finished firings go; firings in flight stay until the scheduler has seen them end.
            c.execute(
                f"DELETE FROM trigger_firings WHERE trigger_id=? AND status NOT IN {ACTIVE}",
                (t.id,),
            )

    # -- files watched by dataset: triggers ---------------------------------------------

    def files(self, trigger_id: str) -> dict[str, sqlite3.Row]:
        rows = self._db.execute(
            "SELECT * FROM trigger_files WHERE trigger_id=?", (trigger_id,)
        ).fetchall()
        return {r["path"]: r for r in rows}

    def note_files(self, trigger_id: str, seen: list[FileSeen], now: float) -> None:
        """Record files without firing (a stat change with the same content, or a freshness
        trigger's view of its data)."""
        with self.tx() as c:
            for f in seen:
                row = c.execute(
                    "SELECT digest FROM trigger_files WHERE trigger_id=? AND path=?",
                    (trigger_id, f.path),
                ).fetchone()
                changed = row is None or row["digest"] != f.digest
                c.execute(
                    "INSERT INTO trigger_files(trigger_id, path, digest, size, mtime_ns, changed_at)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT(trigger_id, path) DO UPDATE SET"
                    " digest=excluded.digest, size=excluded.size, mtime_ns=excluded.mtime_ns,"
                    " changed_at=CASE WHEN ? THEN excluded.changed_at ELSE changed_at END",
                    (trigger_id, f.path, f.digest, f.size, f.mtime_ns, now, int(changed)),
                )

    # -- firings ------------------------------------------------------------------------

    def claim_event(
        self,
        t: Trigger,
        key: str,
        event: str,
        value: str | None,
        *,
        output: str,
        log: str,
        file: FileSeen | None = None,
        now: float | None = None,
        drift: tuple[str, int] | None = None,
    ) -> str:
        """Claim one event for starting.

        For a drift episode (``drift``: the revision and the episode's number), the
        trigger's drift state moves to "drifted" in the same transaction; an episode
        already marked drifted for that revision is ``"taken"``.

        For a file, the key is found here: the file's next generation, claimed only when
        its recorded digest differs from ``file.digest`` (a racing scheduler that moved it
        on first makes this ``"taken"``).

        Returns:
            ``"claimed:<key>"`` (start it), ``"taken"`` (claimed before: never start it
            again) or ``"busy"`` (the trigger is at its ``max_concurrency``).
        """
        now = time.time() if now is None else now
        with self.tx() as c:
            if file is not None:
                row = c.execute(
                    "SELECT digest, gen FROM trigger_files WHERE trigger_id=? AND path=?",
                    (t.id, file.path),
                ).fetchone()
                if row is not None and row["digest"] == file.digest:
                    return "taken"
                gen = (row["gen"] if row is not None else 0) + 1
                key = f"{t.id}@file:{file.path}#{gen}"
            if drift is not None:
                row = c.execute(
                    "SELECT revision, drifted FROM trigger_drift WHERE trigger_id=?", (t.id,)
                ).fetchone()
                if row is not None and row["revision"] == drift[0] and row["drifted"]:
                    return "taken"
            if c.execute("SELECT 1 FROM trigger_firings WHERE key=?", (key,)).fetchone():
                return "taken"
            running = c.execute(
                f"SELECT COUNT(*) FROM trigger_firings WHERE trigger_id=? AND status IN {ACTIVE}",
                (t.id,),
            ).fetchone()[0]
            if running >= t.max_concurrency:
                return "busy"
            c.execute(
                "INSERT INTO trigger_firings(key, trigger_id, trigger, event, value, status,"
                " output, log, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (key, t.id, t.name, event, value, "STARTING", output, log, now),
            )
            if file is not None:
                self._move_file(c, t.id, file, now)
            if drift is not None:
                self._set_drift(c, t.id, drift[0], drift[1], True, now)
        return f"claimed:{key}"

    # -- drift episodes -----------------------------------------------------------------

    def drift_state(self, trigger_id: str) -> sqlite3.Row | None:
        """The drift: trigger's episode: ``revision``, ``episode`` (its number), ``drifted``."""
        return self._db.execute(
            "SELECT * FROM trigger_drift WHERE trigger_id=?", (trigger_id,)
        ).fetchone()

    def end_drift(self, trigger_id: str, revision: str, episode: int) -> None:
        """The endpoint is back within its thresholds (or serves a new revision): the
        episode ends, and the next crossing is a new one that fires again."""
        with self.tx() as c:
            self._set_drift(c, trigger_id, revision, episode, False, time.time())

    @staticmethod
    def _set_drift(
        c: sqlite3.Connection,
        trigger_id: str,
        revision: str,
        episode: int,
        drifted: bool,
        now: float,
    ) -> None:
        c.execute(
            "INSERT INTO trigger_drift(trigger_id, revision, episode, drifted, changed_at)"
            " VALUES (?,?,?,?,?) ON CONFLICT(trigger_id) DO UPDATE SET revision=excluded.revision,"
            " episode=excluded.episode, drifted=excluded.drifted, changed_at=excluded.changed_at",
            (trigger_id, revision, episode, int(drifted), now),
        )

    def skip_event(
        self,
        t: Trigger,
        key: str,
        event: str,
        value: str | None,
        reason: str,
        file: FileSeen | None = None,
    ) -> bool:
        """Record an event passed over (beyond the catch-up bound); it never fires."""
        now = time.time()
        with self.tx() as c:
            if file is not None:
                row = c.execute(
                    "SELECT digest, gen FROM trigger_files WHERE trigger_id=? AND path=?",
                    (t.id, file.path),
                ).fetchone()
                if row is not None and row["digest"] == file.digest:
                    return False
                key = f"{t.id}@file:{file.path}#{(row['gen'] if row is not None else 0) + 1}"
                self._move_file(c, t.id, file, now)
            cur = c.execute(
                "INSERT OR IGNORE INTO trigger_firings(key, trigger_id, trigger, event, value,"
                " status, reason, created_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (key, t.id, t.name, event, value, "SKIPPED", reason, now, now),
            )
        return cur.rowcount > 0

    @staticmethod
    def _move_file(c: sqlite3.Connection, trigger_id: str, f: FileSeen, now: float) -> None:
        c.execute(
            "INSERT INTO trigger_files(trigger_id, path, digest, size, mtime_ns, changed_at, gen)"
            " VALUES (?,?,?,?,?,?,1) ON CONFLICT(trigger_id, path) DO UPDATE SET"
            " digest=excluded.digest, size=excluded.size, mtime_ns=excluded.mtime_ns,"
            " changed_at=excluded.changed_at, gen=gen+1",
            (trigger_id, f.path, f.digest, f.size, f.mtime_ns, now),
        )

    def known_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT key FROM trigger_firings WHERE key IN ({marks})", keys
        ).fetchall()
        return {r["key"] for r in rows}

    def set_firing(self, key: str, **fields: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.tx() as c:
            c.execute(f"UPDATE trigger_firings SET {sets} WHERE key=?", (*fields.values(), key))

    def active_firings(self) -> list[sqlite3.Row]:
        return self._db.execute(
            f"SELECT * FROM trigger_firings WHERE status IN {ACTIVE} ORDER BY created_at"
        ).fetchall()

    def firings(self, trigger_id: str, limit: int = 20) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM trigger_firings WHERE trigger_id=? ORDER BY created_at DESC, rowid DESC"
            " LIMIT ?",
            (trigger_id, limit),
        ).fetchall()

    def prune(self, trigger_id: str, keep: int = HISTORY) -> list[str]:
        """Keep the newest ``keep`` firings of a trigger (and every one in flight).

        Returns:
            The output and log files of the firings dropped (the caller removes them).
        """
        with self.tx() as c:
            rows = c.execute(
                f"SELECT key, output, log FROM trigger_firings WHERE trigger_id=?"
                f" AND status NOT IN {ACTIVE} AND key NOT IN (SELECT key FROM trigger_firings"
                " WHERE trigger_id=? ORDER BY created_at DESC LIMIT ?)",
                (trigger_id, trigger_id, keep),
            ).fetchall()
            c.executemany("DELETE FROM trigger_firings WHERE key=?", [(r["key"],) for r in rows])
        return [p for r in rows for p in (r["output"], r["log"]) if p]
