"""Opening and migrating the local SQLite stores: the run store, schedules and endpoints.

All three live in ``runs.db`` and are shared by several processes at once (an
engine per run, the CLI, the dashboard, the scheduler loop), so each opens the
file the same way: WAL (readers never block the writer), a generous busy
timeout, autocommit with explicit short ``BEGIN IMMEDIATE`` transactions
(writers queue instead of deadlocking), and a schema of ``CREATE ... IF NOT
EXISTS`` statements that :func:`migrate` applies only when something it names
is missing -- so opening an up-to-date store never takes the write lock, and an
older store gains new tables and indexes the first time a newer version opens it.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CREATE = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\s+IF\s+NOT\s+EXISTS\s+(\w+)",
    re.IGNORECASE,
)


def connect(
    path: Path, *, timeout: float = 60.0, foreign_keys: bool = False, rows: bool = True
) -> sqlite3.Connection:
    """Open (creating its folder if needed) a store's database as every store does.

    ``rows``: fetch :class:`sqlite3.Row` s (by name and index) rather than tuples.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), timeout=timeout, isolation_level=None, check_same_thread=False
    )
    if rows:
        conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    for _ in range(100):
        if str(mode).lower() == "wal":
            break
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError:  # another process holds a lock: wait for it
            time.sleep(0.05)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    return conn


def statements(schema: str) -> list[str]:
    return [s.strip() for s in schema.split(";") if s.strip()]


def migrate(conn: sqlite3.Connection, schema: str) -> bool:
    """Create whatever the schema names that the database lacks; True if anything was.

    Every statement must be ``CREATE ... IF NOT EXISTS`` (or an ``INSERT OR IGNORE``
    of seed rows), so applying the schema twice, or from two processes, is harmless.
    """
    have = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}
    wanted = [m.group(1) for s in statements(schema) if (m := _CREATE.match(s))]
    if all(name in have for name in wanted):
        return False
    with transaction(conn) as c:
        for stmt in statements(schema):
            c.execute(stmt)
    return True


def add_column(conn: sqlite3.Connection, table: str, column: str, decl: str) -> bool:
    """Add a column that a table made by an older version lacks; True if it was added.

    Call it before :func:`migrate` (the schema's indexes may name the column).
    Checked again inside the write lock, so processes opening an old store at
    once add it once. A table that does not exist yet is left to the schema.
    """

    def has() -> bool | None:
        cols = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
        return (column in cols) if cols else None

    if has() is not False:
        return False
    with transaction(conn) as c:
        if has() is not False:
            return False
        c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    return True


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction, taken at once (``BEGIN IMMEDIATE``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
