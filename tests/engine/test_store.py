"""The SQLite run store: schema, prefixes, atomic attempt commits, several writers at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from workbench_dsl.engine.store import RunStore
from workbench_dsl.errors import UsageError


def _new(store: RunStore, run_id: str) -> None:
    store.create_run(run_id, "p", "spec: 1", "sha", {"n": 1}, {"cache": True}, "p.yaml")


def test_wal_mode_and_run_lookup_by_prefix(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    _new(store, "abc123")
    _new(store, "abd456")
    assert store.find_run("abc")["run_id"] == "abc123"
    with pytest.raises(UsageError, match="matches several runs"):
        store.find_run("ab")
    with pytest.raises(UsageError, match="no run matches 'zz'"):
        store.find_run("zz")
    assert store.find_run("ABC")["run_id"] == "abc123"
    for pattern in ("%", "_", "a_c", "a%"):  # not wildcards
        with pytest.raises(UsageError, match="no run matches"):
            store.find_run(pattern)
    with pytest.raises(UsageError, match=r"no run matches 'aaaa.*\(100,000 characters\)"):
        store.find_run("a" * 100_000)  # was: OperationalError, LIKE pattern too complex
    assert store.run_parameters("abc123") == {"n": 1}
    assert [r["run_id"] for r in store.list_runs(10)] == ["abd456", "abc123"]


def test_attempt_commit_is_one_transaction(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    _new(store, "r1")
    store.start_attempt("r1", "t", 1, "/log", "/work", {"kind": "container", "status": "RUNNING"})
    with pytest.raises(sqlite3.Error):
        store.finish_attempt(
            "r1",
            "t",
            1,
            "SUCCEEDED",
            1.0,
            0,
            None,
            task_fields={"status": "SUCCEEDED", "outputs_json": {"parameters": {"x": 1}}},
            artifacts=[{"name": "a", "uri": None}],  # NOT NULL uri: the whole commit fails
            cache_entry={"key": "k", "outputs": {}},
        )
    row = store.tasks("r1")[0]
    assert row["status"] == "RUNNING" and row["outputs_json"] is None
    assert store.cache_get("k") is None
    assert store.attempts("r1", "t")[0]["status"] == "RUNNING"


def _writer(path: str, run_id: str, n: int) -> None:
    store = RunStore(Path(path))
    _new(store, run_id)
    for i in range(n):
        store.start_attempt(
            run_id, f"t{i}", 1, "/l", "/w", {"kind": "container", "status": "RUNNING"}
        )
        store.finish_attempt(
            run_id,
            f"t{i}",
            1,
            "SUCCEEDED",
            0.1,
            0,
            None,
            task_fields={"status": "SUCCEEDED", "outputs_json": {"parameters": {}}},
            artifacts=[{"name": "a", "uri": f"/u/{i}", "sha256": "s", "size": 1}],
            cache_entry={"key": f"{run_id}-{i}", "outputs": {}},
        )
    store.finish_run(run_id, "SUCCEEDED", None, {}, 0.0)


def test_several_processes_write_at_once(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    RunStore(db).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(db), f"run{i}", 40)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = RunStore(db)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (
        store.conn.execute("SELECT COUNT(*) FROM attempts WHERE status='SUCCEEDED'").fetchone()[0]
        == 160
    )
    assert len(store.cache_list()) == 160
    assert all(r["status"] == "SUCCEEDED" for r in store.list_runs(10))


def test_limits_and_offsets_past_sqlite_integers_are_clamped(tmp_path: Path) -> None:
    from workbench_dsl.engine import run_queries as rq

    store = RunStore(tmp_path / "runs.db")
    _new(store, "abc123")
    huge = 10**23  # `runs list --limit 1e23` was an OverflowError: an internal error
    assert [r["run_id"] for r in store.list_runs(huge)] == ["abc123"]
    assert rq.task_page(store.conn, "abc123", huge, huge) == []
    rows, total = rq.page_of_runs(store.conn, "", [], huge, 50)
    assert rows == [] and total == 1
