"""``@train`` run locally through its compiled component: in-process, and as a 2-process gloo job."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from train_sweep_harness import run_component

from workbench_dsl import Dataset, Input, Model, Output, train
from workbench_dsl.backends.trainer.base import TrainingFailed


def _has_torch() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # blocked, as in the no-torch test's subprocess
        return False


torch_missing = pytest.mark.skipif(not _has_torch(), reason="needs the torch extra")


@train
def single(data: Input[Dataset], factor: int, model: Output[Model]) -> int:
    import os

    with open(data.path) as f:
        rows = len(f.read().splitlines())
    with open(model.path, "w") as f:
        f.write(f"rows={rows * factor}")
    model.metadata["rows"] = rows
    return os.getpid()


@train(nodes=2, procs_per_node=1)
def allreduce(data: Input[Dataset], scale: float, model: Output[Model]) -> float:
    import torch
    import torch.distributed as dist

    total = torch.tensor([float(dist.get_rank() + 1) * scale])
    dist.all_reduce(total)
    print(f"rank {dist.get_rank()} of {dist.get_world_size()} on {dist.get_backend()}")
    with open(model.path, "w") as f:
        f.write(f"written by rank {dist.get_rank()}")
    model.metadata["total"] = total.item()
    return total.item()


@train(nodes=1, procs_per_node=2)
def rank1_breaks(scale: float) -> float:
    import torch.distributed as dist

    if dist.get_rank() == 1:
        raise RuntimeError("NaN loss on rank 1")
    dist.barrier()
    return scale


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("x\n1\n2\n3\n", encoding="utf-8")
    return path


def test_one_process_runs_in_the_task_process(tmp_path: Path, data: Path) -> None:
    out = run_component(
        single, workdir=tmp_path / "a", parameters={"factor": 2}, artifacts={"data": str(data)}
    )
    assert out["parameterValues"]["Output"] == os.getpid()
    assert Path(out["paths"]["model"]).read_text() == "rows=8"
    # The function's own metadata, and the data it was trained on (for the registry's tag).
    trained_on = [{"input": "data", "uri": str(data)}]
    assert out["artifacts"]["model"]["artifacts"][0]["metadata"] == {
        "rows": 4,
        "workbench.training_data": trained_on,
    }


@torch_missing
@pytest.mark.torch
def test_two_process_gloo_allreduce_rank0_outputs(
    tmp_path: Path, data: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = run_component(
        allreduce, workdir=tmp_path / "a", parameters={"scale": 2.0}, artifacts={"data": str(data)}
    )
    assert out["parameterValues"]["Output"] == 6.0  # (1 + 2) * 2 summed over both ranks
    assert Path(out["paths"]["model"]).read_text() == "written by rank 0"
    assert out["artifacts"]["model"]["artifacts"][0]["metadata"] == {
        "total": 6.0,
        "workbench.training_data": [{"input": "data", "uri": str(data)}],
    }
    logs = capfd.readouterr().out
    assert "[rank 0] rank 0 of 2 on gloo" in logs
    assert "[rank 1] rank 1 of 2 on gloo" in logs


@torch_missing
@pytest.mark.torch
def test_a_failing_rank_fails_the_step_with_its_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match=r"^rank 1 failed: RuntimeError: NaN loss on rank 1$"):
        run_component(rank1_breaks, workdir=tmp_path / "a", parameters={"scale": 1.0})


_NO_TORCH = """
import importlib.abc, sys
class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name=name)
        return None
sys.meta_path.insert(0, BlockTorch())
sys.path[:0] = [{tests!r}]
from pathlib import Path
from train_sweep_harness import run_component
from test_train_runtime_local import allreduce
try:
    run_component(allreduce, workdir=Path({work!r}), parameters={{"scale": 1.0}},
                  artifacts={{"data": {data!r}}})
except Exception as e:
    print("ERROR", type(e).__name__, e)
"""


def test_missing_torch_is_a_clear_error_naming_the_extra(tmp_path: Path, data: Path) -> None:
    code = _NO_TORCH.format(
        tests=str(Path(__file__).parent), work=str(tmp_path / "a"), data=str(data)
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ERROR")), proc.stderr)
    assert line == (
        "ERROR TorchMissing allreduce: training with 2 processes runs torch.distributed and "
        "needs PyTorch, which is not installed here: pip install 'workbench-dsl[torch]'"
    )
