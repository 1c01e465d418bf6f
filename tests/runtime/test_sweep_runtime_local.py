"""``@sweep`` run locally through its compiled component: outputs, inputs to every trial, resume."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from train_sweep_harness import run_component

from workbench_dsl import Dataset, Input, Model, Output, space, sweep, train


@sweep(
    space={"x": space.uniform(-2.0, 2.0), "k": space.categorical(["a", "b"])},
    objective="score",
    goal="maximize",
    algorithm="random",
    max_trials=6,
    parallel_trials=2,
    seed=11,
    metrics=["rows"],  # recorded beside the objective, as Katib would record it
)
def quad(data: Input[Dataset], offset: float, x: float, k: str, model: Output[Model]) -> dict:
    with open(data.path) as f:
        rows = len(f.read().splitlines())
    with open(model.path, "w") as f:
        f.write(f"x={x} k={k}")
    model.metadata["k"] = k
    return {"score": -(x**2) + offset + (0.5 if k == "b" else 0.0), "rows": rows}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("x\n1\n2\n", encoding="utf-8")
    return path


def test_sweep_outputs_best_params_value_trials_and_model(tmp_path: Path, data: Path) -> None:
    out = run_component(
        quad, workdir=tmp_path / "a", parameters={"offset": 1.0}, artifacts={"data": str(data)}
    )
    best_params = out["parameterValues"]["best_params"]
    best_value = out["parameterValues"]["best_value"]
    assert set(best_params) == {"x", "k"}
    assert best_value == pytest.approx(
        -(best_params["x"] ** 2) + 1.0 + (0.5 if best_params["k"] == "b" else 0)
    )

    with open(out["paths"]["trials"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert list(rows[0]) == [
        "trial",
        "state",
        "score",
        "duration_s",
        "params.k",
        "params.x",
        "metrics.score",
        "metrics.rows",
        "error",
    ]
    assert {r["state"] for r in rows} == {"succeeded"}
    assert {r["metrics.rows"] for r in rows} == {"3"}  # the upstream dataset reached every trial
    assert max(float(r["score"]) for r in rows) == pytest.approx(best_value)

    model_text = Path(out["paths"]["best_model"]).read_text()
    assert model_text == f"x={best_params['x']} k={best_params['k']}"
    meta = out["artifacts"]["best_model"]["artifacts"][0]["metadata"]
    assert meta["k"] == best_params["k"] and meta["score"] == best_value
    trials_meta = out["artifacts"]["trials"]["artifacts"][0]["metadata"]
    assert trials_meta["rows"] == 6 and trials_meta["objective"] == "score"
    assert (tmp_path / "a" / "status.txt").read_text().startswith("trial 6/6, best score ")


_INTERRUPTED = """
import os, signal, sys
sys.path[:0] = [{tests!r}, {module_dir!r}]
from pathlib import Path
from train_sweep_harness import run_component
import resumable
run_component(resumable.slow, workdir=Path({work!r}), parameters={{}})
"""

_MODULE = """
from workbench_dsl import space, sweep

@sweep(space={"x": space.integer(0, 100)}, objective="v", algorithm="random",
       max_trials=6, parallel_trials=1, seed=5)
def slow(x: int) -> dict:
    import os, signal
    from pathlib import Path
    marks = Path(os.environ["MARKS"])
    marks.mkdir(exist_ok=True)
    (marks / str(len(list(marks.iterdir())))).write_text(str(x))
    if os.environ.get("CRASH_AT") == str(len(list(marks.iterdir()))):
        os.kill(os.getppid(), signal.SIGKILL)  # the whole task dies mid-trial
        signal.pause()
    return {"v": x}
"""


def test_a_resumed_run_continues_the_study(tmp_path: Path) -> None:
    module_dir = tmp_path / "mod"
    module_dir.mkdir()
    (module_dir / "resumable.py").write_text(_MODULE, encoding="utf-8")
    marks = tmp_path / "marks"
    code = _INTERRUPTED.format(
        tests=str(Path(__file__).parent), module_dir=str(module_dir), work=str(tmp_path / "attempt")
    )
    env = {**os.environ, "MARKS": str(marks), "CRASH_AT": "3"}
    first = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert len(list(marks.iterdir())) == 3  # two trials finished, the third was cut off

    env.pop("CRASH_AT")
    second = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "continuing the study: 2 of 6 trials already finished" in second.stdout
    # 2 kept + the interrupted one again + 3 more = 6 finished; 4 new trial runs.
    assert len(list(marks.iterdir())) == 3 + 4
    xs = [int((marks / str(i)).read_text()) for i in range(7)]
    assert xs[3] == xs[2]  # the interrupted trial's parameters were tried again
    rows = list(
        csv.DictReader(Path(tmp_path / "attempt" / "outputs" / "trials").read_text().splitlines())
    )
    assert [r["state"] for r in rows] == ["succeeded"] * 2 + ["failed"] + ["succeeded"] * 4
    assert rows[2]["error"] == "interrupted; tried again"


@train(nodes=2, procs_per_node=1)
def fit_trial(lr: float, model: Output[Model]) -> dict:
    import torch.distributed as dist

    from workbench_dsl import report

    report(step=1, loss=1.0 - lr)
    with open(model.path, "w") as f:
        f.write(f"rank {dist.get_rank()} lr {lr}")
    return {"loss": 1.0 - lr, "world": dist.get_world_size()}


# One grid point: each trial costs two fresh interpreters importing torch.
swept_fit = sweep(
    space={"lr": space.grid([0.2])},
    objective="loss",
    goal="minimize",
    algorithm="grid",
    max_trials=5,
    parallel_trials=1,
    metrics=["world"],
)(fit_trial)


@pytest.mark.slow
@pytest.mark.torch
def test_a_swept_train_step_runs_each_trial_as_a_distributed_job(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = run_component(swept_fit, workdir=tmp_path / "a", parameters={})
    assert out["parameterValues"]["best_params"] == {"lr": 0.2}
    assert out["parameterValues"]["best_value"] == pytest.approx(0.8)
    assert Path(out["paths"]["best_model"]).read_text() == "rank 0 lr 0.2"
    rows = list(csv.DictReader(Path(out["paths"]["trials"]).read_text().splitlines()))
    assert len(rows) == 1 and rows[0]["metrics.world"] == "2"  # the grid has one point
