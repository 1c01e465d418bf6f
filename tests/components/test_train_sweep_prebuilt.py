"""The prebuilt ``train`` and ``sweep`` components, loaded from their YAML as plain KFP users do, run."""

from __future__ import annotations

import csv
import sys
import textwrap
from pathlib import Path

import pytest
from kfp import components

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "runtime"))
from train_sweep_harness import run_component  # noqa: E402

FIT = textwrap.dedent(
    """
    def fit(data: Input[Dataset], model: Output[Model], scale: float) -> dict:
        with open(data.path) as f:
            rows = len(f.read().splitlines())
        with open(model.path, "w") as f:
            f.write(f"rows={rows}")
        return {"rows": rows * scale}
    """
).strip()

TRIAL = textwrap.dedent(
    """
    def trial(data: Input[Dataset], x: float, opt: str, bonus: float, model: Output[Model]) -> dict:
        with open(model.path, "w") as f:
            f.write(f"{x}/{opt}")
        return {"score": -x * x + (bonus if opt == "b" else 0.0)}
    """
).strip()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("a\n1\n2\n", encoding="utf-8")
    return path


def test_prebuilt_train_runs_a_function_given_as_source(tmp_path: Path, data: Path) -> None:
    train = components.load_component_from_file(str(REPO / "components" / "train.yaml"))
    out = run_component(
        train,
        workdir=tmp_path / "a",
        parameters={"function_source": FIT, "function_name": "fit", "arguments": {"scale": 2.0}},
        artifacts={"data": str(data)},
    )
    assert out["parameterValues"]["Output"] == {"rows": 6.0}
    assert Path(out["paths"]["model"]).read_text() == "rows=3"


def test_prebuilt_sweep_passes_data_to_every_trial(tmp_path: Path, data: Path) -> None:
    sweep = components.load_component_from_file(str(REPO / "components" / "sweep.yaml"))
    out = run_component(
        sweep,
        workdir=tmp_path / "a",
        parameters={
            "function_source": TRIAL,
            "function_name": "trial",
            "space": {
                "x": {"type": "uniform", "low": -1.0, "high": 1.0},
                "opt": {"type": "categorical", "values": ["a", "b"]},
            },
            "objective": "score",
            "algorithm": "random",
            "max_trials": 4,
            "seed": 3,
            "arguments": {"bonus": 0.5},
        },
        artifacts={"data": str(data)},
    )
    best = out["parameterValues"]["best_params"]
    assert set(best) == {"x", "opt"}
    assert Path(out["paths"]["best_model"]).read_text() == f"{best['x']}/{best['opt']}"
    rows = list(csv.DictReader(Path(out["paths"]["trials"]).read_text().splitlines()))
    assert len(rows) == 4 and {r["state"] for r in rows} == {"succeeded"}


def test_prebuilt_sweep_rejects_a_bad_space(tmp_path: Path) -> None:
    sweep = components.load_component_from_file(str(REPO / "components" / "sweep.yaml"))
    with pytest.raises(
        ValueError, match="parameter 'x': low must be positive, the log of a non-positive bound"
    ):
        run_component(
            sweep,
            workdir=tmp_path / "a",
            parameters={
                "function_source": TRIAL,
                "function_name": "trial",
                "space": {"x": {"type": "loguniform", "low": 0.0, "high": 1.0}},
                "objective": "score",
            },
        )
