"""What a TrainJob node or a Katib trial pod runs: fetch inputs, run the ranks, publish rank 0's result.

``python -m workbench_dsl.runtime._pod`` reads the invocation from
``$WORKBENCH_INVOCATION_JSON``, downloads every input artifact from its URI,
starts this node's processes (``torchrun`` with the ``PET_*`` environment the
Trainer's torch runtime sets, or one plain process), and on node 0 uploads
rank 0's outputs to their URIs, prints the trial's metrics as ``name=value``
lines (what Katib's stdout collector reads) and the result line the launcher
waits for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from workbench_dsl.backends.trainer import artifacts as store
from workbench_dsl.backends.trainer.base import RESULT_MARKER
from workbench_dsl.runtime._invocation import INVOCATION_FILE, INVOCATION_JSON

#: Env var: the Katib trial's name (``${trialSpec.Name}``), used to stage its outputs.
TRIAL_NAME = "WORKBENCH_TRIAL_NAME"


def prepare(inv: dict[str, Any], work: Path) -> dict[str, Any]:
    """Download inputs and give every artifact a local path; return the local invocation."""
    trial_name = os.environ.get(TRIAL_NAME)
    staging = (inv.get("trial") or {}).get("staging_uri")
    for name, d in inv["artifacts"].items():
        if isinstance(d, list):
            for i, item in enumerate(d):
                item["path"] = str(work / "in" / name / str(i))
                store.download(item["uri"], item["path"])
        elif d.get("output"):
            if staging and trial_name:
                d["uri"] = store.join(staging, trial_name, name)
            d["path"] = str(work / "out" / name)
            Path(d["path"]).parent.mkdir(parents=True, exist_ok=True)
        else:
            d["path"] = str(work / "in" / name)
            store.download(d["uri"], d["path"])
    inv["result_path"] = str(work / "result.json")
    inv["scratch"] = str(work)
    return inv


def metric_lines(value: Any) -> list[str]:
    """``name=value`` lines for the numeric metrics of a trial's result (Katib's format)."""
    if not isinstance(value, dict):
        return []
    lines = []
    for k, v in value.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            lines.append(f"{k}={float(v)!r}")
    return lines


def node_rank() -> int:
    for var in ("PET_NODE_RANK", "JOB_COMPLETION_INDEX"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def install(packages: list[str]) -> None:
    """Install the step preset's packages on top of the runtime image, as KFP pods do."""
    if packages:
        subprocess.check_call(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-warn-script-location",
                *packages,
            ]
        )


def main() -> None:
    inv = json.loads(os.environ[INVOCATION_JSON])
    install(list(inv.get("packages") or []))
    work = Path(tempfile.mkdtemp(prefix="workbench-"))
    inv = prepare(inv, work)
    inv_path = work / "invocation.json"
    inv_path.write_text(json.dumps(inv), encoding="utf-8")
    env = {**os.environ, INVOCATION_FILE: str(inv_path), "PYTHONUNBUFFERED": "1"}
    env.pop(INVOCATION_JSON, None)
    if inv.get("launcher") == "torchrun":
        # torchrun takes --nnodes, --nproc-per-node, --node-rank and the
        # rendezvous address from the PET_* variables the torch runtime sets.
        cmd = [sys.executable, "-m", "torch.distributed.run", "-m", "workbench_dsl.runtime._rank"]
    else:
        env.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"})
        cmd = [sys.executable, "-m", "workbench_dsl.runtime._rank"]
    sys.stdout.flush()
    code = subprocess.call(cmd, env=env)
    if code != 0:
        raise SystemExit(code)
    if node_rank() != 0:
        return
    result = json.loads(Path(inv["result_path"]).read_text(encoding="utf-8"))
    for d in inv["artifacts"].values():
        if isinstance(d, dict) and d.get("output"):
            store.upload(d["path"], d["uri"])
    if inv.get("trial"):
        for line in metric_lines(result.get("return")):
            print(line)
    print(RESULT_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
