"""A local schedule records its runs under the experiment it was given."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import local_root
from workbench_dsl.schedule.local import LocalScheduler, default_launcher


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_scheduled_runs_land_in_the_schedules_experiment(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(
        "from kfp import dsl\n\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def echo(n: int) -> int:\n    return n\n\n"
        "@dsl.pipeline(name='tiny')\n"
        "def tiny(n: int = 0):\n    echo(n=n)\n"
    )
    add = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench_dsl",
            "schedule",
            "add",
            "tiny.py:tiny",
            "--cron",
            "* * * * *",
            "--no-catchup",
            "--experiment",
            "nightly",
            "--json",
        ],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["experiment"] == "nightly"
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench_dsl",
            "schedule",
            "add",
            "tiny.py:tiny",
            "--cron",
            "* * * * *",
            "--name",
            "other",
            "--experiment",
            "\t",
        ],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "bad experiment name" in bad.stderr

    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    sched = LocalScheduler(clock=Clock(now), launcher=default_launcher)
    assert len(sched.run_once().started) == 1
    deadline = time.monotonic() + 120
    while sched.store.active_ticks() and time.monotonic() < deadline:
        time.sleep(0.1)
        sched.run_once()
    row = sched.store.ticks(sched.store.get("tiny").id)[0]
    assert row["status"] == "SUCCEEDED", Path(row["log"]).read_text()
    assert RunStore(local_root().runs_db).experiment_of(row["run_id"]) == "nightly"

    upd = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench_dsl",
            "schedule",
            "update",
            "tiny",
            "--experiment",
            "weekly",
            "--json",
        ],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upd.returncode == 0, upd.stderr
    assert json.loads(upd.stdout)["experiment"] == "weekly"
