"""The endpoint records: tables of their own in the run store's SQLite file (``runs.db``).

``endpoints`` holds each endpoint's port, protocol, auth, traffic split and
process; ``endpoint_revisions`` every revision deployed to it;
``endpoint_scaling`` its replicas, idle time before scaling to zero and cost per
hour (from the ``@serve`` step's compute profile); ``endpoint_cold_starts`` the
last cold starts of a scale-to-zero endpoint (bounded). WAL mode and a
busy timeout let the engine, the deploy step, the servers and the CLI share
the file.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench_dsl import _sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    auth TEXT NOT NULL DEFAULT 'none',
    token_hash TEXT,
    stable TEXT,
    canary TEXT,
    canary_percent INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'stopped',
    pid INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoint_revisions (
    endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
    revision TEXT NOT NULL,
    seq INTEGER NOT NULL,
    model_uri TEXT NOT NULL,
    storage TEXT NOT NULL,
    flavor TEXT NOT NULL,
    predictor_source TEXT,
    predictor_name TEXT,
    state TEXT NOT NULL,
    error TEXT,
    run_id TEXT,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'predictive',
    options TEXT,
    PRIMARY KEY (endpoint, revision)
);
CREATE TABLE IF NOT EXISTS endpoint_scaling (
    endpoint TEXT PRIMARY KEY REFERENCES endpoints(name) ON DELETE CASCADE,
    min_replicas INTEGER NOT NULL DEFAULT 1,
    scale_to_zero_after INTEGER NOT NULL DEFAULT 300,
    cost_per_hour REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS endpoint_cold_starts (
    endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
    at REAL NOT NULL,
    seconds REAL NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS endpoint_cold_starts_by_endpoint
    ON endpoint_cold_starts (endpoint, at);
"""

#: Cold starts kept per endpoint (``endpoints show`` reports the last and the median).
COLD_STARTS_KEPT = 50


@dataclass(frozen=True)
class EndpointRow:
    name: str
    port: int
    protocol: str
    auth: str
    token_hash: str | None
    stable: str | None
    canary: str | None
    canary_percent: int
    state: str
    pid: int | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class RevisionRow:
    endpoint: str
    revision: str
    seq: int
    model_uri: str
    storage: str
    flavor: str
    predictor_source: str | None
    predictor_name: str | None
    state: str
    error: str | None
    run_id: str | None
    created_at: float
    #: ``predictive`` or ``llm``.
    kind: str = "predictive"
    #: An LLM revision's knobs (``LLMOptions`` as JSON), None for a predictive one.
    options: str | None = None

    def llm_options(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self.options)) if self.options else {}

    def to_json(self) -> dict[str, Any]:
        out = self._json()
        out["kind"] = self.kind
        if self.kind == "llm":
            out["llm"] = self.llm_options()
        return out

    def _json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "model_uri": self.model_uri,
            "flavor": self.flavor,
            "predictor": self.predictor_name,
            "state": self.state,
            "error": self.error,
            "run_id": self.run_id,
            "created_at": self.created_at,
        }


class EndpointStore:
    """Reads and writes the endpoint tables of one ``runs.db``."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._ready = False

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = _sqlite.connect(self.db, timeout=30.0, foreign_keys=True, rows=False)
        try:
            if not self._ready:
                # Stores made before LLM endpoints lack the revision's kind and knobs.
                _sqlite.add_column(
                    conn, "endpoint_revisions", "kind", "TEXT NOT NULL DEFAULT 'predictive'"
                )
                _sqlite.add_column(conn, "endpoint_revisions", "options", "TEXT")
                _sqlite.migrate(conn, _SCHEMA)
                self._ready = True
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (BEGIN IMMEDIATE), so read-then-write is atomic."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- endpoints -------------------------------------------------------------------

    def get(self, name: str, conn: sqlite3.Connection | None = None) -> EndpointRow | None:
        if conn is None:
            with self.connect() as c:
                return self.get(name, c)
        row = conn.execute(
            f"SELECT {_ENDPOINT_COLS} FROM endpoints WHERE name = ?", (name,)
        ).fetchone()
        return EndpointRow(*row) if row else None

    def all(self) -> list[EndpointRow]:
        with self.connect() as conn:
            rows = conn.execute(f"SELECT {_ENDPOINT_COLS} FROM endpoints ORDER BY name").fetchall()
        return [EndpointRow(*r) for r in rows]

    def create(
        self, conn: sqlite3.Connection, *, name: str, port: int, protocol: str, auth: str
    ) -> EndpointRow:
        now = time.time()
        conn.execute(
            "INSERT INTO endpoints (name, port, protocol, auth, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, port, protocol, auth, now, now),
        )
        row = self.get(name, conn)
        assert row is not None
        return row

    def update(self, name: str, conn: sqlite3.Connection | None = None, **fields: Any) -> None:
        if conn is None:
            with self.connect() as c:
                return self.update(name, c, **fields)
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        conn.execute(f"UPDATE endpoints SET {cols} WHERE name = ?", (*fields.values(), name))
        return None

    def used_ports(self, conn: sqlite3.Connection) -> set[int]:
        return {r[0] for r in conn.execute("SELECT port FROM endpoints")}

    # -- revisions -------------------------------------------------------------------

    def add_revision(
        self,
        conn: sqlite3.Connection,
        *,
        endpoint: str,
        model_uri: str,
        storage: str,
        flavor: str,
        predictor_source: str | None,
        predictor_name: str | None,
        run_id: str | None,
        kind: str = "predictive",
        options: str | None = None,
    ) -> RevisionRow:
        seq = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM endpoint_revisions WHERE endpoint = ?",
            (endpoint,),
        ).fetchone()[0]
        revision = f"{endpoint}-predictor-{seq:05d}"
        conn.execute(
            "INSERT INTO endpoint_revisions (endpoint, revision, seq, model_uri, storage, "
            "flavor, predictor_source, predictor_name, state, run_id, created_at, kind, options) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'loading', ?, ?, ?, ?)",
            (
                endpoint,
                revision,
                seq,
                model_uri,
                storage,
                flavor,
                predictor_source,
                predictor_name,
                run_id,
                time.time(),
                kind,
                options,
            ),
        )
        row = self.revision(endpoint, revision, conn)
        assert row is not None
        return row

    def revision(
        self, endpoint: str, revision: str, conn: sqlite3.Connection | None = None
    ) -> RevisionRow | None:
        if conn is None:
            with self.connect() as c:
                return self.revision(endpoint, revision, c)
        row = conn.execute(
            f"SELECT {_REVISION_COLS} FROM endpoint_revisions WHERE endpoint = ? AND revision = ?",
            (endpoint, revision),
        ).fetchone()
        return RevisionRow(*row) if row else None

    def revisions(self, endpoint: str) -> list[RevisionRow]:
        with self.connect() as conn:
            rows = conn.execute(
                f"SELECT {_REVISION_COLS} FROM endpoint_revisions WHERE endpoint = ? "
                f"ORDER BY seq DESC",
                (endpoint,),
            ).fetchall()
        return [RevisionRow(*r) for r in rows]

    # -- scaling -----------------------------------------------------------------------

    def scaling(self, endpoint: str, conn: sqlite3.Connection | None = None) -> Scaling:
        """The endpoint's scaling (the defaults for one deployed before it was recorded)."""
        if conn is None:
            with self.connect() as c:
                return self.scaling(endpoint, c)
        row = conn.execute(
            "SELECT min_replicas, scale_to_zero_after, cost_per_hour FROM endpoint_scaling "
            "WHERE endpoint = ?",
            (endpoint,),
        ).fetchone()
        return Scaling(int(row[0]), int(row[1]), float(row[2])) if row else Scaling()

    def set_scaling(self, endpoint: str, scaling: Scaling, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO endpoint_scaling (endpoint, min_replicas, scale_to_zero_after, "
            "cost_per_hour) VALUES (?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET "
            "min_replicas = excluded.min_replicas, "
            "scale_to_zero_after = excluded.scale_to_zero_after, "
            "cost_per_hour = excluded.cost_per_hour",
            (endpoint, scaling.min_replicas, scaling.scale_to_zero_after, scaling.cost_per_hour),
        )

    def add_cold_start(self, endpoint: str, seconds: float, error: str | None = None) -> None:
        """Record a cold start (keeping the last :data:`COLD_STARTS_KEPT`)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO endpoint_cold_starts (endpoint, at, seconds, error) "
                "VALUES (?, ?, ?, ?)",
                (endpoint, time.time(), round(seconds, 6), error),
            )
            conn.execute(
                "DELETE FROM endpoint_cold_starts WHERE endpoint = ? AND rowid NOT IN ("
                "SELECT rowid FROM endpoint_cold_starts WHERE endpoint = ? "
                "ORDER BY at DESC LIMIT ?)",
                (endpoint, endpoint, COLD_STARTS_KEPT),
            )
            conn.execute("COMMIT")

    def cold_starts(self, endpoint: str) -> list[ColdStart]:
        """The recorded cold starts of ``endpoint``, newest first."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT at, seconds, error FROM endpoint_cold_starts WHERE endpoint = ? "
                "ORDER BY at DESC",
                (endpoint,),
            ).fetchall()
        return [ColdStart(float(r[0]), float(r[1]), r[2]) for r in rows]

    def cold_start_summary(self, endpoint: str) -> dict[str, Any]:
        """Count, last and median seconds of the recorded cold starts that worked, and
        the last one's error when it failed."""
        starts = self.cold_starts(endpoint)
        ok = [c.seconds for c in starts if c.error is None]
        return {
            "cold_starts": len(ok),
            "last_cold_start_s": round(ok[0], 3) if ok else None,
            "median_cold_start_s": round(statistics.median(ok), 3) if ok else None,
            "last_cold_start_error": starts[0].error if starts and starts[0].error else None,
        }

    def set_revision_state(
        self, endpoint: str, revision: str, state: str, error: str | None = None
    ) -> None:
        with self.connect() as conn:
            conn.execute(
                "UPDATE endpoint_revisions SET state = ?, error = ? "
                "WHERE endpoint = ? AND revision = ?",
                (state, error, endpoint, revision),
            )


@dataclass(frozen=True)
class Scaling:
    """How an endpoint scales: ``min_replicas=0`` stops its model server after
    ``scale_to_zero_after`` idle seconds; ``cost_per_hour`` is what a running server costs."""

    min_replicas: int = 1
    scale_to_zero_after: int = 300
    cost_per_hour: float = 0.0

    @property
    def scales_to_zero(self) -> bool:
        return self.min_replicas == 0


@dataclass(frozen=True)
class ColdStart:
    at: float
    seconds: float
    error: str | None


_ENDPOINT_COLS = (
    "name, port, protocol, auth, token_hash, stable, canary, canary_percent, state, pid, "
    "created_at, updated_at"
)
_REVISION_COLS = (
    "endpoint, revision, seq, model_uri, storage, flavor, predictor_source, predictor_name, "
    "state, error, run_id, created_at, kind, options"
)
