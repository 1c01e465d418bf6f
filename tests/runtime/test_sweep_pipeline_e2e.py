"""End to end through the engine: `workbench run` the sweep-then-train and distributed-training examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _workbench(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_sweep_then_train_example(workbench_home: Path, tmp_path: Path) -> None:
    run = _workbench(
        workbench_home,
        tmp_path,
        "run",
        str(REPO / "pipelines" / "sweep_then_train.py"),
        "-p",
        "epochs=4",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "SUCCEEDED"
    assert [t["name"] for t in result["tasks"]] == ["load-data", "tune", "fit", "evaluate"]
    assert result["outputs"]["Output"] > 0.85
    logs = _workbench(workbench_home, tmp_path, "runs", "logs", result["run_id"], "tune")
    lines = [ln for ln in logs.stdout.splitlines() if ln.startswith("trial ")]
    assert len(lines) == 12 and lines[-1].endswith(")")
    assert "(trial 12/12, best accuracy " in lines[-1]
    # Every trial either finished or was stopped early by medianstop (which ones
    # depends on the order parallel trials finish; the rule itself is tested in
    # tests/backends/sweeper).
    assert all(" succeeded: " in ln or " pruned: stopped early by medianstop" in ln for ln in lines)


@pytest.mark.slow
@pytest.mark.torch
def test_distributed_training_example(workbench_home: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    run = _workbench(
        workbench_home,
        tmp_path,
        "run",
        str(REPO / "pipelines" / "distributed_training.py"),
        "-p",
        "epochs=10",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "SUCCEEDED"
    assert result["outputs"]["Output"] > 0.8
    logs = _workbench(workbench_home, tmp_path, "runs", "logs", result["run_id"], "fit")
    assert "[rank 0] epoch 10: loss " in logs.stdout
