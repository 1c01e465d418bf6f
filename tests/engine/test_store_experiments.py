"""The run store's experiment column: recorded with each run, migrated into older stores."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from workbench_dsl.engine.store import (
    DEFAULT_EXPERIMENT,
    SCHEMA_VERSION,
    RunStore,
    open_reader,
)
from workbench_dsl.errors import UsageError


def _add(store: RunStore, run_id: str, pipeline: str = "p", **kw: str) -> None:
    store.create_run(run_id, pipeline, "spec", "sha", {"x": 1}, {}, None, **kw)


def _old_store(path: Path) -> None:
    """A store as version 1 made it: no experiment column, schema_version 1."""
    s = RunStore(path)
    _add(s, "old1")
    with s.tx() as c:
        c.execute("DROP INDEX runs_experiment_created")
        c.execute("ALTER TABLE runs DROP COLUMN experiment")
        c.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    s.close()


def test_runs_are_recorded_under_their_experiment(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "runs.db")
    _add(s, "a", experiment="churn")
    _add(s, "b", experiment="churn", pipeline="q")
    _add(s, "c")
    assert s.experiment_of("a") == "churn" and s.experiment_of("c") == DEFAULT_EXPERIMENT
    assert [r["run_id"] for r in s.query_runs(experiment="churn")] == ["b", "a"]
    assert [r["run_id"] for r in s.query_runs(experiment="churn", pipeline="p")] == ["a"]
    assert [r["run_id"] for r in s.query_runs(status="RUNNING", limit=1)] == ["c"]
    exps = {r["experiment"]: r for r in s.experiments()}
    assert exps["churn"]["runs"] == 2 and sorted(exps["churn"]["pipelines"].split(",")) == [
        "p",
        "q",
    ]
    assert exps[DEFAULT_EXPERIMENT]["running"] == 1
    for bad in ("", "   ", "a\nb", "x" * 201):
        with pytest.raises(UsageError, match="bad experiment name"):
            _add(s, "bad", experiment=bad)
    assert s.get_run("bad") is None  # nothing half-written


def test_an_old_store_is_migrated_once_even_by_engines_opening_it_at_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _old_store(path)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            RunStore(path).close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = RunStore(path)
    assert s.experiment_of("old1") == DEFAULT_EXPERIMENT
    version = s.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION
    indexes = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "runs_experiment_created" in indexes
    _add(s, "new1", experiment="e")
    assert [r["run_id"] for r in s.query_runs(experiment="e")] == ["new1"]


def test_the_reader_cannot_write_and_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no runs yet"):
        open_reader(tmp_path / "runs.db")
    _add(RunStore(tmp_path / "runs.db"), "a")
    r = open_reader(tmp_path / "runs.db")
    with pytest.raises(sqlite3.OperationalError):
        r.conn.execute("UPDATE runs SET status='FAILED'")
    assert r.get_run("a")["status"] == "RUNNING"
