"""The Optuna sweeper: trials in separate processes, failures, early stopping, resume."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends.sweeper.algorithms import MissingPackage
from workbench_dsl.backends.sweeper.base import (
    SweepFailed,
    SweepSettings,
    TrialRecord,
)
from workbench_dsl.backends.sweeper.local import OptunaSweeper
from workbench_dsl.runtime.report import report


def settings(**overrides: Any) -> SweepSettings:
    config: dict[str, Any] = {
        "objective": "score",
        "goal": "maximize",
        "algorithm": "random",
        "space": {
            "x": {"type": "uniform", "low": -3.0, "high": 3.0},
            "k": {"type": "categorical", "values": ["a", "b"]},
        },
        "max_trials": 6,
        "parallel_trials": 2,
        "seed": 7,
    }
    config.update(overrides)
    return SweepSettings.from_json(config)


def sweeper(tmp_path: Path, out: io.StringIO | None = None, **kw: Any) -> OptunaSweeper:
    return OptunaSweeper(
        journal=tmp_path / "study.journal", study_name="s", out=out or io.StringIO(), **kw
    )


def test_trials_run_in_parallel_worker_processes(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        start = time.time()
        time.sleep(0.3)
        (marks / str(record.number)).write_text(f"{os.getpid()} {start} {time.time()}")
        print(f"x={params['x']:.3f}")
        return {"score": -(params["x"] ** 2), "k": params["k"]}

    out = io.StringIO()
    statuses: list[str] = []
    result = sweeper(tmp_path, out, status=statuses.append).run(settings(), run_trial)

    assert [t.number for t in result.trials] == list(range(6))
    assert all(t.state == "succeeded" for t in result.trials)
    assert result.best.value == max(t.value for t in result.trials if t.value is not None)
    assert result.best.metrics["k"] == result.best.params["k"]
    spans = [tuple(map(float, p.read_text().split()[1:])) for p in marks.iterdir()]
    pids = {int(p.read_text().split()[0]) for p in marks.iterdir()}
    assert os.getpid() not in pids and len(pids) == 2  # two workers, reused
    # At most two at once, and some overlapped.
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, d in events:
        running += d
        peak = max(peak, running)
    assert peak == 2
    text = out.getvalue()
    assert "[trial 0] x=" in text
    assert statuses[-1].startswith("trial 6/6, best score ")


def test_failed_trials_are_recorded_and_past_the_limit_fail_the_sweep(tmp_path: Path) -> None:
    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        if record.number % 2:
            raise ValueError(f"diverged at trial {record.number}")
        return {"score": 1.0}

    result = sweeper(tmp_path).run(settings(max_failed_trials=5), run_trial)
    failed = [t for t in result.trials if t.state == "failed"]
    assert len(failed) == 3 and failed[0].error == "ValueError: diverged at trial 1"

    with pytest.raises(SweepFailed) as info:
        sweeper(tmp_path / "b").run(settings(max_failed_trials=1, parallel_trials=1), run_trial)
    assert str(info.value) == (
        "2 trials failed, more than max_failed_trials=1; last error: ValueError: diverged at trial 3"
    )


def test_a_trial_that_kills_its_process_fails_and_the_worker_is_replaced(tmp_path: Path) -> None:
    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        if record.number == 1:
            os._exit(3)
        return {"score": float(record.number)}

    result = sweeper(tmp_path).run(settings(max_trials=4, parallel_trials=1), run_trial)
    states = [t.state for t in result.trials]
    assert states == ["succeeded", "failed", "succeeded", "succeeded"]
    assert result.trials[1].error == "the trial's process died (exit code 3)"


def test_bad_results_fail_the_trial_with_a_clear_reason(tmp_path: Path) -> None:
    answers = [{"loss": 1.0}, ["not", "a", "dict"], {"score": "high"}, {"score": 2}]

    def run_trial(params: dict[str, Any], record: TrialRecord) -> Any:
        return answers[record.number]

    result = sweeper(tmp_path).run(settings(max_trials=4, parallel_trials=1), run_trial)
    assert [t.error for t in result.trials] == [
        "ValueError: the trial returned no 'score' metric (got: loss)",
        "ValueError: the trial function must return a dict of metrics (got list)",
        "ValueError: metric 'score' must be a number (got str)",
        None,
    ]
    assert result.best.number == 3


def test_no_successful_trial_is_an_error_with_the_first_failure(tmp_path: Path) -> None:
    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        raise KeyError("label")

    with pytest.raises(
        SweepFailed, match=r"^no trial succeeded; first failure: KeyError: 'label'$"
    ):
        sweeper(tmp_path).run(settings(max_trials=2), run_trial)


def test_medianstop_prunes_trials_below_the_median(tmp_path: Path) -> None:
    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        # The first three trials are good; later ones are worse at every step.
        quality = 1.0 if record.number < 3 else 0.1
        for step in range(1, 6):
            report(step=step, score=quality * step)
        return {"score": quality * 5}

    s = settings(
        max_trials=6,
        parallel_trials=1,
        early_stopping={
            "algorithm": "medianstop",
            "settings": {"min_trials_required": 3, "start_step": 2},
        },
    )
    result = sweeper(tmp_path).run(s, run_trial)
    assert [t.state for t in result.trials] == ["succeeded"] * 3 + ["pruned"] * 3
    assert result.trials[3].error == "stopped early by medianstop at step 2"


def test_grid_tries_every_point_once_and_stops(tmp_path: Path) -> None:
    s = settings(
        algorithm="grid",
        space={
            "x": {"type": "integer", "low": 1, "high": 3, "step": 1, "log": False},
            "k": {"type": "grid", "values": ["a", "b"]},
        },
        max_trials=50,
    )
    result = sweeper(tmp_path).run(s, lambda p, r: {"score": p["x"]})
    assert sorted((t.params["x"], t.params["k"]) for t in result.trials) == [
        (x, k) for x in (1, 2, 3) for k in ("a", "b")
    ]


def test_resumed_study_continues_and_reruns_interrupted_trials(tmp_path: Path) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    # A previous attempt finished two trials and was killed during a third.
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for x in (0.5, 1.5):
        t = study.ask(
            {
                "x": optuna.distributions.FloatDistribution(-3, 3),
                "k": optuna.distributions.CategoricalDistribution(["a", "b"]),
            }
        )
        study.tell(t, -abs(x))
    cut = study.ask(
        {
            "x": optuna.distributions.FloatDistribution(-3, 3),
            "k": optuna.distributions.CategoricalDistribution(["a", "b"]),
        }
    )

    seen: list[int] = []

    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        return {"score": 0.0}

    out = io.StringIO()
    result = sweeper(tmp_path, out).run(settings(max_trials=5, parallel_trials=1), run_trial)
    assert "continuing the study: 2 of 5 trials already finished" in out.getvalue()
    finished = [t for t in result.trials if t.error != "interrupted; tried again"]
    assert len(finished) == 5
    interrupted = next(t for t in result.trials if t.number == cut.number)
    assert interrupted.state == "failed" and interrupted.error == "interrupted; tried again"
    rerun = next(t for t in result.trials if t.number == cut.number + 1)
    assert rerun.params == cut.params and rerun.state == "succeeded"
    assert seen == []


def test_missing_sampler_package_fails_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a)
    )
    ran: list[int] = []
    with pytest.raises(MissingPackage) as info:
        sweeper(tmp_path).run(
            settings(algorithm="cmaes", space={"x": {"type": "uniform", "low": 0, "high": 1}}),
            lambda p, r: ran.append(1) or {"score": 1.0},
        )
    assert str(info.value) == (
        "algorithm='cmaes' needs the 'cmaes' package, which is not installed here: pip install cmaes"
    )
    assert ran == [] and not (tmp_path / "study.journal").exists()


_DRIVER = """
import os, sys, time
from pathlib import Path
from workbench_dsl.backends.sweeper.base import SweepSettings
from workbench_dsl.backends.sweeper.local import OptunaSweeper

marks = Path(sys.argv[1])

def run_trial(params, record):
    (marks / str(record.number)).write_text(str(os.getpid()))
    time.sleep(60)

settings = SweepSettings.from_json({
    "objective": "v", "goal": "maximize", "algorithm": "random",
    "space": {"x": {"type": "uniform", "low": 0, "high": 1}},
    "max_trials": 4, "parallel_trials": 2,
})
OptunaSweeper(journal=marks / "j" / "study.journal", study_name="s").run(settings, run_trial)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["cancel", "kill"])
def test_no_trial_process_outlives_a_cancelled_or_killed_sweep(tmp_path: Path, sig: int) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    task = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(marks)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len([p for p in marks.iterdir() if p.is_file()]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [int(p.read_text()) for p in marks.iterdir() if p.is_file()]
        assert len(pids) == 2, "two trials should be running"
        task.send_signal(sig)
        task.wait(timeout=15)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "trial workers outlived the sweep"
    finally:
        if task.poll() is None:
            task.kill()
        task.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
