"""One way to open and migrate the local SQLite stores (runs, schedules, endpoints)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workbench_dsl import _sqlite
from workbench_dsl.backends.deployer._store import EndpointStore
from workbench_dsl.engine.store import RunStore
from workbench_dsl.schedule.store import ScheduleStore


def test_the_three_stores_share_one_file_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "root" / "runs.db"
    RunStore(db).close()
    ScheduleStore(db).close()
    with EndpointStore(db).connect():
        pass
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "tasks", "cache", "schedules", "schedule_ticks", "endpoints"} <= names


def test_an_older_store_gains_what_is_missing_and_a_current_one_needs_no_write_lock(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    RunStore(db).close()
    with sqlite3.connect(db) as c:
        c.execute("DROP INDEX runs_status_created")
    RunStore(db).close()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT 1 FROM sqlite_master WHERE name='runs_status_created'").fetchone()
    # Another process is writing: opening an up-to-date store must not wait for it.
    writer = _sqlite.connect(db, timeout=0.2)
    writer.execute("BEGIN IMMEDIATE")
    try:
        conn = _sqlite.connect(db, timeout=0.2)
        assert _sqlite.migrate(conn, "CREATE TABLE IF NOT EXISTS runs(x)") is False
        conn.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_schedule_and_trigger_tables_made_before_a_column_gain_it_on_open(tmp_path: Path) -> None:
    from workbench_dsl.schedule.trigger_store import TriggerStore

    db = tmp_path / "runs.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE schedules(name TEXT PRIMARY KEY, id TEXT)")
        c.execute("CREATE TABLE triggers(name TEXT PRIMARY KEY, id TEXT)")
    ScheduleStore(db).close()
    TriggerStore(db).close()
    with sqlite3.connect(db) as c:
        for table, column, default in (
            ("schedules", "experiment", "'Default'"),
            ("triggers", "options_json", "'{}'"),
        ):
            cols = {r[1]: r[4] for r in c.execute(f"PRAGMA table_info({table})")}
            assert cols[column] == default, (table, cols)
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schedule_ticks", "trigger_firings", "trigger_files", "trigger_drift"} <= names
