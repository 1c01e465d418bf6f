"""drift:ENDPOINT triggers: one run per drift episode, across scheduler restarts, with the
endpoint and the drifted features as the pipeline's inputs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.backends.drift.drift_helpers import ENDPOINT, log_traffic, served_root
from tests.schedule.test_triggers import FakeRun, history, settle
from workbench_dsl.backends.deployer.requestlog import log_dir
from workbench_dsl.backends.drift import report as drift_report
from workbench_dsl.schedule.events import parse_event, parse_threshold
from workbench_dsl.schedule.local import LocalScheduler
from workbench_dsl.schedule.trigger_store import Trigger, TriggerStore


def _add(root_db: Path, workdir: Path, threshold: list[str]) -> Trigger:
    now = time.time()
    t = Trigger(
        name="retrain",
        id="",
        pipeline="p.yaml",
        workdir=str(workdir),
        params={"n": "1"},
        event=parse_threshold(parse_event(f"drift:{ENDPOINT}"), threshold),
        event_param=None,
        max_age_s=None,
        max_catchup=5,
        max_concurrency=1,
        paused=False,
        experiment="Default",
        created_at=now,
        updated_at=now,
        after=now,
        event_inputs={"endpoint": "STRING", "drifted_features": "LIST"},
    )
    store = TriggerStore(root_db)
    store.add_trigger(t)
    store.close()
    return t


def _pass(fake: FakeRun) -> list[str]:
    drift_report._cache.clear()  # a pass a cache period later
    sched = LocalScheduler(trigger_launcher=fake)
    try:
        started = sched.run_once().started
        settle(sched)
        return started
    finally:
        sched.close()


def test_one_run_per_drift_episode_across_restarts(workbench_home: Path, tmp_path: Path) -> None:
    root, rev = served_root(workbench_home)
    _add(root.runs_db, tmp_path, ["psi=0.2,requests=100"])
    fake = FakeRun()
    log_traffic(root, rev, 60, shift=4.0)
    assert _pass(fake) == []  # 60 instances: too few for a verdict
    log_traffic(root, rev, 140, shift=4.0, seed=2)
    started = _pass(fake)
    assert len(started) == 1 and "size drifted" in started[0]
    (_, params, env) = fake.started[0]
    assert params == {"n": "1", "endpoint": ENDPOINT, "drifted_features": '["size"]'}
    assert env["WORKBENCH_TRIGGER_VALUE"] == ENDPOINT
    # still drifted: the same episode, in this scheduler and in a restarted one
    assert _pass(fake) == [] and _pass(fake) == []

    # back to normal traffic: the episode ends without a run ...
    shutil.rmtree(log_dir(root.endpoints / ENDPOINT))
    log_traffic(root, rev, 300, seed=3)
    assert _pass(fake) == []
    # ... and the next drift is a new episode: one more run
    shutil.rmtree(log_dir(root.endpoints / ENDPOINT))
    log_traffic(root, rev, 300, shift=-4.0, seed=4)
    assert len(_pass(fake)) == 1 and _pass(fake) == []
    rows = history("retrain")
    assert [r["status"] for r in rows] == ["SUCCEEDED", "SUCCEEDED"]
    assert sorted(r["key"].rsplit("#", 1)[1] for r in rows) == ["1", "2"]


def test_features_threshold_and_stored_options(workbench_home: Path, tmp_path: Path) -> None:
    root, rev = served_root(workbench_home)
    t = _add(root.runs_db, tmp_path, ["features=2", "since=1h"])
    store = TriggerStore(root.runs_db)
    assert store.get_trigger("retrain").to_json()["threshold"] == {
        "psi": 0.2,
        "p": 0.01,
        "features": 2,
        "requests": 50,
        "since": 3600.0,
    }
    store.close()
    del t
    fake = FakeRun()
    log_traffic(root, rev, 300, shift=4.0)  # only size drifts: one feature of the two needed
    assert _pass(fake) == []
