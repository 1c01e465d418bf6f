"""The local scheduler with a hand-driven clock, real SQLite and real processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.paths import local_root
from workbench_dsl.schedule import cron
from workbench_dsl.schedule.local import LocalScheduler, default_launcher, run_env
from workbench_dsl.schedule.store import Schedule, ScheduleStore

T0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeRun:
    """Starts a real process that sleeps, then prints what `workbench run --json` prints."""

    def __init__(self, seconds: float = 0.0, status: str = "SUCCEEDED") -> None:
        self.seconds = seconds
        self.status = status
        self.started: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, s: Schedule, tick: str, out: Path, log: Path, env: dict[str, str]) -> Any:
        with self.lock:
            self.started.append((s.name, tick, env))
        doc = json.dumps({"run_id": f"run-{len(self.started)}", "status": self.status})
        code = f"import time; time.sleep({self.seconds}); print({doc!r})"
        with open(out, "wb") as f:
            return subprocess.Popen([sys.executable, "-c", code], stdout=f, start_new_session=True)


def add(name: str = "nightly", cron_expr: str = "0 * * * *", **kw: Any) -> Schedule:
    store = ScheduleStore(local_root().runs_db)
    fields = {"catchup": True, "max_concurrency": 1, "paused": False, "timezone": "UTC"}
    fields.update(kw)
    s = store.add(
        Schedule(
            name=name,
            id="",
            pipeline="p.yaml",
            workdir=str(Path.cwd()),
            params={"n": "1"},
            cron=cron_expr,
            created_at=0,
            updated_at=0,
            start_after=cron.iso(T0),
            **fields,
        )
    )
    store.close()
    return s


def wait_done(sched: LocalScheduler, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sched.store.active_ticks() and time.monotonic() < deadline:
        time.sleep(0.05)
        sched.run_once()


def test_catch_up_runs_every_missed_tick(tmp_path: Path) -> None:
    add(max_concurrency=5)
    clock, run = Clock(T0 + timedelta(hours=3, minutes=30)), FakeRun()
    sched = LocalScheduler(clock=clock, launcher=run)
    report = sched.run_once()
    assert report.started == [
        "nightly@2024-01-01T01:00:00Z",
        "nightly@2024-01-01T02:00:00Z",
        "nightly@2024-01-01T03:00:00Z",
    ]
    wait_done(sched)
    assert sched.run_once().started == []  # nothing new is due
    rows = sched.store.ticks(sched.store.get("nightly").id)
    assert [(r["tick"], r["status"], r["run_id"]) for r in rows] == [
        ("2024-01-01T03:00:00Z", "SUCCEEDED", "run-3"),
        ("2024-01-01T02:00:00Z", "SUCCEEDED", "run-2"),
        ("2024-01-01T01:00:00Z", "SUCCEEDED", "run-1"),
    ]
    # the run knows its tick: lineage records it as the nominal time
    assert run.started[0][2]["WORKBENCH_NOMINAL_TIME"] == "2024-01-01T01:00:00Z"
    assert run.started[0][2]["WORKBENCH_HOME"] == str(local_root().root)


def test_no_catch_up_runs_only_the_latest_missed_tick(tmp_path: Path) -> None:
    add(catchup=False)
    sched = LocalScheduler(clock=Clock(T0 + timedelta(hours=3, minutes=30)), launcher=FakeRun())
    report = sched.run_once()
    assert report.started == ["nightly@2024-01-01T03:00:00Z"]
    assert report.skipped == ["nightly@2024-01-01T01:00:00Z", "nightly@2024-01-01T02:00:00Z"]
    wait_done(sched)
    statuses = {r["tick"]: r["status"] for r in sched.store.ticks(sched.store.get("nightly").id)}
    assert statuses == {
        "2024-01-01T01:00:00Z": "SKIPPED",
        "2024-01-01T02:00:00Z": "SKIPPED",
        "2024-01-01T03:00:00Z": "SUCCEEDED",
    }


def test_a_restarted_or_doubled_scheduler_never_starts_a_tick_twice(tmp_path: Path) -> None:
    add(max_concurrency=10)
    clock, run = Clock(T0 + timedelta(hours=2, minutes=1)), FakeRun(seconds=0.3)
    # two schedulers on the same store, racing in threads
    a = LocalScheduler(clock=clock, launcher=run)
    b = LocalScheduler(clock=clock, launcher=run)
    barrier = threading.Barrier(2)

    def go(s: LocalScheduler) -> None:
        barrier.wait()
        s.run_once()

    threads = [threading.Thread(target=go, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t for _, t, _ in run.started) == ["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"]
    a.close()
    # a restart while the runs are still going: it adopts them by pid, starts nothing
    c = LocalScheduler(clock=clock, launcher=run)
    assert c.run_once().started == []
    wait_done(c)
    assert {r["status"] for r in c.store.ticks(c.store.get("nightly").id)} == {"SUCCEEDED"}
    assert c.run_once().started == [] and len(run.started) == 2


def test_max_concurrency_holds_ticks_until_a_run_ends(tmp_path: Path) -> None:
    add(cron_expr="*/10 * * * *", max_concurrency=1)
    clock, run = Clock(T0 + timedelta(minutes=10)), FakeRun(seconds=0.6)
    sched = LocalScheduler(clock=clock, launcher=run)
    assert sched.run_once().started == ["nightly@2024-01-01T00:10:00Z"]
    clock.now = T0 + timedelta(minutes=20)
    report = sched.run_once()
    assert report.started == [] and report.waiting == ["nightly@2024-01-01T00:20:00Z"]
    # Poll until the first run ends (a loaded machine can take longer than the run's
    # 0.6 s just to start Python): the held tick starts in the pass that sees it end.
    deadline = time.monotonic() + 20
    while True:
        time.sleep(0.1)
        report = sched.run_once()
        if report.finished or time.monotonic() > deadline:
            break
        assert report.started == []
    assert [k for k, _, _ in report.finished] == ["nightly@2024-01-01T00:10:00Z"]
    assert report.started == ["nightly@2024-01-01T00:20:00Z"]
    wait_done(sched)


def test_paused_schedules_start_nothing(tmp_path: Path) -> None:
    add(paused=True)
    sched = LocalScheduler(clock=Clock(T0 + timedelta(hours=5)), launcher=FakeRun())
    assert sched.run_once().started == []


def test_timezone_and_dst(tmp_path: Path) -> None:
    # 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer
    ticks = cron.ticks_between(
        "0 3 * * *",
        "Europe/Berlin",
        datetime(2024, 3, 29, tzinfo=UTC),
        datetime(2024, 4, 1, 12, tzinfo=UTC),
    )
    assert [cron.iso(t) for t in ticks] == [
        "2024-03-29T02:00:00Z",
        "2024-03-30T02:00:00Z",
        "2024-03-31T01:00:00Z",
        "2024-04-01T01:00:00Z",
    ]


def test_a_claimed_tick_whose_scheduler_died_is_lost_not_rerun(tmp_path: Path) -> None:
    s = add()
    store = ScheduleStore(local_root().runs_db)
    assert store.claim(s, "2024-01-01T01:00:00Z", output="o", log="l") == "claimed"
    store._db.execute("UPDATE schedule_ticks SET created_at = created_at - 600")
    sched = LocalScheduler(clock=Clock(T0 + timedelta(hours=1, minutes=5)), launcher=FakeRun())
    report = sched.run_once()
    assert report.finished == [("nightly@2024-01-01T01:00:00Z", "LOST", None)]
    assert report.started == []


def test_failed_start_is_recorded(tmp_path: Path) -> None:
    add()

    def broken(*args: Any) -> Any:
        raise OSError("no such interpreter")

    sched = LocalScheduler(clock=Clock(T0 + timedelta(hours=1)), launcher=broken)
    report = sched.run_once()
    assert report.finished == [("nightly@2024-01-01T01:00:00Z", "LOST", None)]
    row = sched.store.ticks(sched.store.get("nightly").id)[0]
    assert row["reason"] == "could not start: no such interpreter"


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("workbench_dsl.cli.run") is None, reason="needs `workbench run`"
)
@pytest.mark.timeout(120)
def test_a_real_workbench_run_is_started_detached(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(
        "from kfp import dsl\n\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def echo(n: int) -> int:\n    return n\n\n"
        "@dsl.pipeline(name='tiny')\n"
        "def tiny(n: int = 0):\n    echo(n=n)\n"
    )
    path = f"{tmp_path / 'tiny.py'}:tiny"
    store = ScheduleStore(local_root().runs_db)
    store.add(
        Schedule(
            name="tiny",
            id="",
            pipeline=str(path),
            workdir=str(tmp_path),
            params={"n": "4"},
            cron="* * * * *",
            timezone="UTC",
            catchup=False,
            max_concurrency=1,
            paused=False,
            created_at=0,
            updated_at=0,
            start_after=cron.iso(T0),
        )
    )
    sched = LocalScheduler(clock=Clock(T0 + timedelta(minutes=1)), launcher=default_launcher)
    t0 = time.monotonic()
    assert sched.run_once().started == ["tiny@2024-01-01T00:01:00Z"]
    assert time.monotonic() - t0 < 1.0  # the scheduler does not wait for the run
    wait_done(sched, timeout=90)
    row = sched.store.ticks(sched.store.get("tiny").id)[0]
    assert row["status"] == "SUCCEEDED", Path(row["log"]).read_text()
    assert row["run_id"]


def test_a_started_run_gets_the_root_what_started_it_and_a_py_pipelines_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBENCH_PIPELINE_SOURCE", raising=False)
    root = local_root()
    env = run_env(root, "/src/churn.py:nightly", {"WORKBENCH_SCHEDULE": "nightly"})
    assert env["WORKBENCH_HOME"] == str(root.root)
    assert env["WORKBENCH_SCHEDULE"] == "nightly"
    assert env["WORKBENCH_PIPELINE_SOURCE"] == "/src/churn.py"  # the run's lineage reads it
    assert env["PATH"] == os.environ["PATH"]
    assert "WORKBENCH_PIPELINE_SOURCE" not in run_env(root, "/src/churn.yaml", {})
