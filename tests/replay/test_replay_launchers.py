"""Replaying launcher steps: the user's function (one trial, one rank, the evaluation), not the launcher."""

import json
import os
import pty
import sys
import time
from pathlib import Path

import pytest
from replay_helpers import counts, read_until, wb

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


def test_launcher_steps_replay_the_users_function(workbench_home: Path) -> None:
    r = wb(workbench_home, "run", str(HERE / "launcher_steps.py"), "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    tune = next(t for t in run["tasks"] if t["name"] == "tune")
    before = counts(workbench_home)
    from workbench_dsl.backends.registry import open_registry

    assert len(open_registry(None).versions("replay-demo")) == 1

    # @sweep: one trial, with the sweep's best parameters, or with -p.
    r = wb(workbench_home, "runs", "replay", run["run_id"], "tune", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["parameters"]
    k = out["best_params"]["k"]
    assert out["best_value"] == 7.0 * k
    r = wb(workbench_home, "runs", "replay", run["run_id"], "tune", "-p", "k=2", "--json")
    assert json.loads(r.stdout)["parameters"] == {"best_params": {"k": 2}, "best_value": 14.0}
    assert 'replay: one trial with {"k": 2}' in r.stderr
    del tune

    # @train: rank 0 of a world of one.
    r = wb(workbench_home, "runs", "replay", run["run_id"], "fit", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["parameters"] == {"Output": 100.0 + k}
    assert run["outputs"]["Output"] == 100.0 + k

    # @register: the evaluation and its gate; nothing registered.
    r = wb(workbench_home, "runs", "replay", run["run_id"], "judge", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["parameters"]["promoted"] is False
    assert "replay: gate: score = 0.75 (>= 0.5: ok)" in r.stderr
    assert len(open_registry(None).versions("replay-demo")) == 1

    assert counts(workbench_home) == before

    # --pdb in a launcher step stops in the user's function, not in the launcher.
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(WORKBENCH_HOME=str(workbench_home), TMPDIR=str(workbench_home))
        args = ["runs", "replay", run["run_id"], "fit", "-p", 'params={"j": 1}', "--pdb"]
        os.execv(sys.executable, [sys.executable, "-m", "workbench_dsl", *args])
    seen: list[str] = []
    deadline = time.time() + 90
    try:
        text = read_until(fd, "(Pdb)", deadline, seen)
        assert "KeyError: 'k'" in text and "<step fit>" in text
        os.write(fd, b"p sorted(params)\n")
        read_until(fd, "['j']", deadline, seen)
        os.write(fd, b"q\n")
        read_until(fd, "replay failed", deadline, seen)
    finally:
        os.waitpid(pid, 0)
        os.close(fd)

    # A sweep's best value (under its objective's name) and an evaluation are metrics.
    from workbench_dsl import get_run

    assert get_run(run["run_id"]).metrics == {"tune.score": 7.0 * k, "judge.score": 0.75}


def test_a_serve_step_replays_its_predictor_on_a_sample(workbench_home: Path) -> None:
    from workbench_dsl.backends.deployer import local_deployer

    deployer = local_deployer()
    try:
        r = wb(workbench_home, "run", str(HERE / "serve_step.py"), "--json", timeout=300)
        assert r.returncode == 0, r.stderr
        run = json.loads(r.stdout)

        def routing() -> tuple[object, ...]:
            info = deployer.get("replay-serve")  # (its idle share moves with time)
            return (info.stable, info.canary, info.canary_percent, info.url)

        revisions = routing()

        r = wb(
            workbench_home,
            "runs",
            "replay",
            run["run_id"],
            "predict",
            "-p",
            "instances=[[0.0, 0.0], [1.0, 1.0]]",
        )
        assert r.returncode == 0, r.stderr
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith("replay: predictions: "))
        low, high = json.loads(line.removeprefix("replay: predictions: "))
        assert 0.0 <= low < 0.5 < high <= 1.0
        assert "nothing deployed" in r.stdout
        assert routing() == revisions  # no new revision, no change of traffic

        r = wb(workbench_home, "runs", "replay", run["run_id"], "predict")
        assert r.returncode == 1 and "no sample to predict" in r.stderr
    finally:
        deployer.stop_all()
