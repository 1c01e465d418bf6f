"""Event triggers in the local scheduler: real SQLite, real files, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import local_root
from workbench_dsl.schedule.events import parse_event
from workbench_dsl.schedule.local import LocalScheduler
from workbench_dsl.schedule.trigger_local import scan_files
from workbench_dsl.schedule.trigger_store import Trigger, TriggerStore


class FakeRun:
    """Starts a real process that prints what `workbench run --json` prints."""

    def __init__(self, status: str = "SUCCEEDED", seconds: float = 0.0) -> None:
        self.status = status
        self.seconds = seconds
        self.started: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(
        self, t: Trigger, params: dict[str, str], out: Path, log: Path, env: dict[str, str]
    ) -> Any:
        with self.lock:
            self.started.append((t.name, params, env))
            n = len(self.started)
        doc = json.dumps({"run_id": f"run-{t.name}-{n}", "status": self.status})
        code = f"import time; time.sleep({self.seconds}); print({doc!r})"
        with open(out, "wb") as f:
            return subprocess.Popen([sys.executable, "-c", code], stdout=f, start_new_session=True)


def add(on: str, workdir: Path, name: str = "t", **kw: Any) -> Trigger:
    ev = parse_event(on)
    fields: dict[str, Any] = {
        "event_param": "path",
        "max_age_s": None,
        "max_catchup": 5,
        "max_concurrency": 5,
        "paused": False,
        "experiment": "Default",
    }
    fields.update(kw)
    now = time.time()
    t = Trigger(
        name=name,
        id="",
        pipeline="p.yaml",
        workdir=str(workdir),
        params={"n": "1"},
        event=ev,
        created_at=now,
        updated_at=now,
        after=fields.pop("after", now),
        **fields,
    )
    store = TriggerStore(local_root().ensure().runs_db)
    baseline = scan_files(t, ev, {}) if on.startswith("dataset:") else []  # type: ignore[arg-type]
    store.add_trigger(t, baseline)
    store.close()
    return t


def settle(sched: LocalScheduler, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sched.triggers.busy() and time.monotonic() < deadline:
        time.sleep(0.05)
        sched.run_once()


def history(name: str) -> list[dict[str, Any]]:
    store = TriggerStore(local_root().runs_db)
    rows = [dict(r) for r in store.firings(store.get_trigger(name).id, limit=100)]
    store.close()
    return rows


def write(path: Path, text: str, age_s: float = 0.0) -> None:
    path.write_text(text)
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))


def test_new_and_changed_files_fire_once_each_even_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write(data / "a.csv", "1\n")
    add("dataset:data/*.csv", tmp_path)
    fake = FakeRun()
    sched = LocalScheduler(trigger_launcher=fake)
    assert sched.run_once().started == []  # the data there when the trigger was added
    write(data / "b.csv", "2\n")
    r = sched.run_once()
    assert len(r.started) == 1
    assert fake.started[0][1] == {"n": "1", "path": str((data / "b.csv").resolve())}
    assert fake.started[0][2]["WORKBENCH_TRIGGER"] == "t"
    settle(sched)
    sched.close()

    # a restarted scheduler does not start it again; a touch with the same content neither
    sched = LocalScheduler(trigger_launcher=fake)
    st = (data / "b.csv").stat()
    os.utime(data / "b.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert sched.run_once().started == []
    write(data / "a.csv", "1\n2\n")  # new content in a file the baseline had
    assert len(sched.run_once().started) == 1
    settle(sched)
    write(data / "a.csv", "1\n")  # back to old content is a change too
    assert len(sched.run_once().started) == 1
    settle(sched)
    sched.close()
    assert len(fake.started) == 3
    rows = history("t")
    assert [r["status"] for r in rows] == ["SUCCEEDED"] * 3
    assert {r["run_id"] for r in rows} == {"run-t-1", "run-t-2", "run-t-3"}


def test_two_racing_schedulers_start_each_event_once(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    add("dataset:in/*", tmp_path)
    for i in range(4):
        write(tmp_path / "in" / f"f{i}", str(i))
    fake = FakeRun()
    scheds = [LocalScheduler(trigger_launcher=fake) for _ in range(2)]
    barrier = threading.Barrier(2)

    def go(s: LocalScheduler) -> None:
        barrier.wait()
        for _ in range(3):
            s.run_once()

    threads = [threading.Thread(target=go, args=(s,)) for s in scheds]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in scheds:
        settle(s)
        s.close()
    assert sorted(p["path"].rsplit("/", 1)[1] for _, p, _ in fake.started) == [
        "f0",
        "f1",
        "f2",
        "f3",
    ]


def test_catch_up_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    add("dataset:in/*.csv", tmp_path, max_catchup=2)
    for i in range(5):
        write(tmp_path / "in" / f"{i}.csv", str(i), age_s=100 - i)  # 4.csv is the newest
    fake = FakeRun()
    sched = LocalScheduler(trigger_launcher=fake)
    r = sched.run_once()
    assert len(r.started) == 2 and len(r.skipped) == 3
    assert sorted(Path(p["path"]).name for _, p, _ in fake.started) == ["3.csv", "4.csv"]
    settle(sched)
    assert sched.run_once().started == []  # the skipped ones never run
    sched.close()
    assert sorted(r["status"] for r in history("t")) == ["SKIPPED"] * 3 + ["SUCCEEDED"] * 2


def test_max_age_fires_once_per_stale_period(tmp_path: Path) -> None:
    (tmp_path / "feat").mkdir()
    write(tmp_path / "feat" / "x.parquet", "old", age_s=7200)
    add("dataset:feat/*", tmp_path, max_age_s=3600, after=time.time() - 7200)
    fake = FakeRun()
    sched = LocalScheduler(trigger_launcher=fake)
    assert len(sched.run_once().started) == 1  # two hours old, limit one hour
    settle(sched)
    assert sched.run_once().started == []  # still the same stale period
    write(tmp_path / "feat" / "x.parquet", "fresh")
    assert sched.run_once().started == []  # refreshed
    sched.close()
    assert fake.started[0][1]["path"] == "feat/*"


def run_finishing(pipeline: str, status: str) -> str:
    store = RunStore(local_root().ensure().runs_db)
    run_id = f"{pipeline}-{time.time_ns()}"
    store.create_run(run_id, pipeline, "{}", "x", {}, {}, None)
    store.finish_run(run_id, status, None, {}, 0.0)
    store.close()
    return run_id


def test_run_event_chains_on_another_pipelines_status(tmp_path: Path) -> None:
    before = run_finishing("extract", "SUCCEEDED")  # finished before the trigger: not an event
    time.sleep(0.01)
    add("run:extract:SUCCEEDED", tmp_path, name="train", event_param="upstream")
    fake = FakeRun()
    sched = LocalScheduler(trigger_launcher=fake)
    assert sched.run_once().started == []
    run_finishing("extract", "FAILED")
    ok = run_finishing("extract", "SUCCEEDED")
    run_finishing("other", "SUCCEEDED")
    assert len(sched.run_once().started) == 1
    settle(sched)
    sched.close()
    sched = LocalScheduler(trigger_launcher=fake)  # restart
    assert sched.run_once().started == []
    sched.close()
    assert [p["upstream"] for _, p, _ in fake.started] == [ok]
    assert before not in json.dumps(history("train"))
    (row,) = history("train")
    assert (row["status"], row["run_id"], row["value"]) == ("SUCCEEDED", "run-train-1", ok)


def test_paused_trigger_ignores_runs_finished_while_paused(tmp_path: Path) -> None:
    add("run:extract", tmp_path, name="train", paused=True)
    run_finishing("extract", "FAILED")
    store = TriggerStore(local_root().runs_db)
    time.sleep(0.01)
    store.set_paused("train", False)
    store.close()
    fake = FakeRun()
    sched = LocalScheduler(trigger_launcher=fake)
    assert sched.run_once().started == []
    run_finishing("extract", "CANCELLED")
    assert len(sched.run_once().started) == 1
    settle(sched)
    sched.close()


def test_trigger_state_is_private(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    add("dataset:in/*", tmp_path)
    write(tmp_path / "in" / "a", "1")
    sched = LocalScheduler(trigger_launcher=FakeRun())
    sched.run_once()
    settle(sched)
    sched.close()
    d = local_root().root / "triggers" / "t"
    for p in [d, *d.iterdir()]:
        assert p.stat().st_mode & 0o077 == 0, p


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ("drift:Churn", "endpoint name 'Churn' must be lowercase"),
        ("weather:rain", "unknown event kind 'weather'"),
        ("run:", "bad --on"),
        ("run:churn:DONE", "unknown run status 'DONE'"),
        ("dataset", "bad --on"),
    ],
)
def test_bad_events_are_one_line_errors(on: str, message: str) -> None:
    from workbench_dsl.errors import UsageError

    with pytest.raises(UsageError, match=message):
        parse_event(on)
