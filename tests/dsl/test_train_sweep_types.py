"""Editors see the real types of ``@train`` and ``@sweep`` steps (mypy's reveal_type)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SNIPPET = """
from workbench_dsl import Dataset, Input, Model, Output, space, sweep, train

@train
def bare(x: int, y: str = "a") -> float:
    return 1.0

@train(nodes=2, procs_per_node=4)
def fit(data: Input[Dataset], lr: float, model: Output[Model]) -> float:
    return lr

@sweep(space={"lr": space.uniform(0, 1)}, objective="acc")
def trial(lr: float, depth: int = 3) -> dict:
    return {"acc": lr}

swept = sweep(space={"lr": space.uniform(0, 1)}, objective="acc")(fit)

reveal_type(bare)
reveal_type(fit.fn)
reveal_type(trial.fn)
reveal_type(swept)
fit.fn(None, "fast", None)
"""


@pytest.mark.slow
def test_train_and_sweep_keep_the_signature(tmp_path: Path) -> None:
    from mypy import api

    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(SNIPPET), encoding="utf-8")
    stdout, _, _ = api.run(
        [
            str(path),
            "--ignore-missing-imports",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".m"),
        ]
    )
    revealed = [line for line in stdout.splitlines() if "Revealed type" in line]
    assert "TrainStep[[x: int, y: str =], float]" in revealed[0]
    assert "def (data: Any, lr: float, model: Any) -> float" in revealed[1]
    assert "def (lr: float, depth: int =) -> dict[Any, Any]" in revealed[2]
    # A swept @train step is a SweepStep; its parameters are not inferred, because kfp
    # ships no type information and mypy answers Any for overloads matched through Any.
    assert "SweepStep[" in revealed[3]
    assert any('Argument 2 has incompatible type "str"' in ln for ln in stdout.splitlines()), stdout
