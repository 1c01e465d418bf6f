"""The program a TrainJob node or Katib trial pod runs, with a directory standing in for object storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench_dsl.backends.trainer._process import free_port

FIT = textwrap.dedent(
    """
    def fit(data: Input[Dataset], factor: int, model: Output[Model]) -> dict:
        import os
        with open(data.path) as f:
            rows = len(f.read().splitlines())
        os.makedirs(model.path, exist_ok=True)
        with open(os.path.join(model.path, "weights.txt"), "w") as f:
            f.write(f"rank {os.environ.get('RANK')} rows {rows}")
        model.metadata["rows"] = rows
        return {"rows": rows * factor, "uri": model.uri}
    """
).strip()

TRIAL = textwrap.dedent(
    """
    def trial(data: Input[Dataset], lr: float, opt: str, depth: int, model: Output[Model]) -> dict:
        from workbench_dsl import report
        report(step=1, acc=0.5)
        with open(model.path, "w") as f:
            f.write(f"{opt}-{depth}")
        return {"acc": lr * 10 + depth, "opt": opt}
    """
).strip()


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    (store / "in").mkdir(parents=True)
    (store / "in" / "data.csv").write_text("x\n1\n2\n", encoding="utf-8")
    return store


def _run(inv: dict, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "WORKBENCH_INVOCATION_JSON": json.dumps(inv),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl.runtime._pod"],
        env=full,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _result(stdout: str) -> dict:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("WORKBENCH_RESULT "))
    return json.loads(line[len("WORKBENCH_RESULT ") :])


def test_node_downloads_inputs_uploads_rank0_outputs_and_prints_result(tmp_path: Path) -> None:
    store = _store(tmp_path)
    inv = {
        "source": FIT,
        "name": "fit",
        "params": {"factor": 3},
        "artifacts": {
            "data": {
                "type": "system.Dataset",
                "uri": f"file://{store}/in/data.csv",
                "metadata": {},
                "output": False,
            },
            "model": {
                "type": "system.Model",
                "uri": f"file://{store}/out/model",
                "metadata": {},
                "output": True,
            },
        },
        "launcher": "python",
    }
    proc = _run(inv, {})
    assert proc.returncode == 0, proc.stderr
    result = _result(proc.stdout)
    # The function sees its artifact's real URI while it reads and writes local files.
    assert result == {
        "return": {"rows": 9, "uri": f"file://{store}/out/model"},
        "metadata": {"model": {"rows": 3}},
    }
    assert (store / "out" / "model" / "weights.txt").read_text() == "rank 0 rows 3"


def test_katib_trial_gets_typed_parameters_prints_metrics_and_stages_its_model(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    inv = {
        "source": TRIAL,
        "name": "trial",
        "params": {},
        "artifacts": {
            "data": {
                "type": "system.Dataset",
                "uri": f"file://{store}/in/data.csv",
                "metadata": {},
                "output": False,
            },
            "model": {"type": "system.Model", "uri": "", "metadata": {}, "output": True},
        },
        "trial": {
            "params": {
                "lr": {"type": "loguniform", "low": 0.001, "high": 0.1},
                "opt": {"type": "categorical", "values": ["adam", "sgd"]},
                "depth": {"type": "integer", "low": 2, "high": 8, "step": 1, "log": False},
            },
            "staging_uri": f"file://{store}/best_model.trials",
        },
        "launcher": "python",
    }
    env = {
        "WORKBENCH_TRIAL_NAME": "sweep-x7k2-abc",
        "WORKBENCH_TRIAL_PARAM_lr": "0.01",
        "WORKBENCH_TRIAL_PARAM_opt": "sgd",
        "WORKBENCH_TRIAL_PARAM_depth": "4",
    }
    proc = _run(inv, env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # What Katib's stdout collector parses: the intermediate report, then the result.
    assert "step=1 acc=0.5" in lines
    assert lines[-2] == "acc=4.1"
    assert _result(proc.stdout)["return"] == {"acc": 4.1, "opt": "sgd"}
    staged = store / "best_model.trials" / "sweep-x7k2-abc" / "model"
    assert staged.read_text() == "sgd-4"


def test_a_failing_function_fails_the_pod(tmp_path: Path) -> None:
    inv = {
        "source": "def boom() -> int:\n    raise ValueError('bad input')\n",
        "name": "boom",
        "params": {},
        "artifacts": {},
        "launcher": "python",
    }
    proc = _run(inv, {})
    assert proc.returncode != 0
    assert "ValueError: bad input" in proc.stderr
    assert "WORKBENCH_RESULT" not in proc.stdout


@pytest.mark.torch
@pytest.mark.slow
def test_torch_runtime_node_runs_its_processes_with_torchrun(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    store = _store(tmp_path)
    source = textwrap.dedent(
        """
        def fit(data: Input[Dataset], model: Output[Model]) -> float:
            import torch
            import torch.distributed as dist
            t = torch.tensor([1.0])
            dist.all_reduce(t)
            with open(model.path, "w") as f:
                f.write(f"rank {dist.get_rank()} of {dist.get_world_size()}")
            return t.item()
        """
    ).strip()
    inv = {
        "source": source,
        "name": "fit",
        "params": {},
        "artifacts": {
            "data": {
                "type": "system.Dataset",
                "uri": f"file://{store}/in/data.csv",
                "metadata": {},
                "output": False,
            },
            "model": {
                "type": "system.Model",
                "uri": f"file://{store}/out/model",
                "metadata": {},
                "output": True,
            },
        },
        "launcher": "torchrun",
    }
    # What the Trainer's torch runtime sets on node 0 of a 1-node, 2-process job.
    env = {
        "PET_NNODES": "1",
        "PET_NPROC_PER_NODE": "2",
        "PET_NODE_RANK": "0",
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": str(free_port()),
    }
    proc = _run(inv, env)
    assert proc.returncode == 0, proc.stderr
    assert _result(proc.stdout)["return"] == 2.0
    assert (store / "out" / "model").read_text() == "rank 0 of 2"
