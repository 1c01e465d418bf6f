"""What one rank of a ``@train`` job runs, locally or in a TrainJob pod.

``python -m workbench_dsl.runtime._rank`` reads the invocation named by
``$WORKBENCH_INVOCATION``, joins the torch.distributed process group when the
job has more than one process (gloo on CPU; nccl with one device per process
when CUDA devices are visible), calls the user's function, and on rank 0
writes the return value and the output artifacts' metadata to the result file.
The process group is set up before the function runs: the function uses it
(``dist.get_rank()``, ``dist.all_reduce``) and does not initialise it again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from workbench_dsl.runtime._invocation import (
    INVOCATION_FILE,
    jsonable,
    restore_artifacts,
    trial_params_from_env,
)
from workbench_dsl.runtime._user import load_function


def init_distributed(world: int) -> Any:
    """Join the process group torchrun's environment describes; returns torch.distributed."""
    import torch
    import torch.distributed as dist

    host_procs = int(
        os.environ.get("WORKBENCH_HOST_PROCS", os.environ.get("LOCAL_WORLD_SIZE", "1"))
    )
    host_index = int(os.environ.get("WORKBENCH_HOST_INDEX", os.environ.get("LOCAL_RANK", "0")))
    backend = "gloo"
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        visible = torch.cuda.device_count()
        if visible < host_procs:
            raise RuntimeError(
                f"{host_procs} training processes on this host need one CUDA device each, "
                f"but {visible} are visible; use fewer processes, or set "
                f"CUDA_VISIBLE_DEVICES= to train on CPU with gloo"
            )
        torch.cuda.set_device(host_index)
        backend = "nccl"
    dist.init_process_group(backend=backend)
    return dist


def main() -> None:
    inv = json.loads(Path(os.environ[INVOCATION_FILE]).read_text(encoding="utf-8"))
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    fn = load_function(inv["source"], inv["name"])
    scratch = Path(inv.get("scratch") or Path(os.environ[INVOCATION_FILE]).parent)
    artifacts, outputs = restore_artifacts(inv["artifacts"], rank=rank, scratch=scratch)
    kwargs = {**inv["params"], **trial_params_from_env(inv.get("trial")), **artifacts}
    dist = init_distributed(world) if world > 1 else None
    # On an error the process group is left to die with the process: tearing it
    # down first would make the other ranks fail ("connection closed by peer")
    # before this rank has recorded the error that caused it all.
    value = fn(**kwargs)
    if dist is not None and dist.is_initialized():
        dist.destroy_process_group()
    if rank == 0 and inv.get("result_path"):
        result = {
            "return": jsonable(value),
            "metadata": {name: jsonable(a.metadata) for name, a in outputs.items()},
        }
        tmp = f"{inv['result_path']}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f)
        os.replace(tmp, inv["result_path"])


if __name__ == "__main__":
    main()
