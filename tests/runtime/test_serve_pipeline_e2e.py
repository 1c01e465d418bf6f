"""End to end through the engine: `workbench run` the train -> register (manual approval) -> deploy
example, approve it from outside the run as a person would, and call the endpoint it left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench_dsl.backends import approvals
from workbench_dsl.backends.deployer import local_deployer
from workbench_dsl.backends.registry import open_registry

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipelines" / "train_register_deploy.py"


@pytest.mark.slow
def test_train_register_approve_deploy(workbench_home: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(workbench_home)
    cmd = [
        sys.executable,
        "-m",
        "workbench_dsl",
        "run",
        str(PIPELINE),
        "-p",
        "n_estimators=10",
        "--json",
    ]
    run = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        registry = None
        deadline = time.monotonic() + 120
        waiting: list[approvals.Approval] = []
        while time.monotonic() < deadline and run.poll() is None:
            if (workbench_home / "mlflow.db").exists():
                registry = registry or open_registry()
                try:
                    waiting = approvals.pending(registry)
                except Exception:  # the step is still creating the registry's tables
                    waiting = []
                if waiting:
                    break
            time.sleep(0.2)
        assert waiting, (
            f"the register step never asked for approval: {run.stderr.read() if run.poll() is not None else ''}"
        )
        (pending,) = waiting
        assert pending.command == "workbench approve breast-cancer 1"
        # From outside the run (this test is no process of it), as a person would.
        approvals.decide(registry, "breast-cancer", "1", approve=True, by="tester")
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    deployer = local_deployer()
    try:
        assert run.returncode == 0, err
        summary = json.loads(out)
        assert summary["status"] == "SUCCEEDED"
        tasks = {t["name"]: t for t in summary["tasks"]}
        assert {"load-data", "train-model", "evaluate", "condition-1/predict"} <= set(tasks)
        assert registry is not None
        assert registry.resolve("models:/breast-cancer@production").version == "1"

        info = deployer.get("breast-cancer")
        assert (info.state, info.stable) == ("running", "breast-cancer-predictor-00001")
        row = [
            13.0,
            15.0,
            85.0,
            520.0,
            0.1,
            0.1,
            0.05,
            0.03,
            0.18,
            0.06,
            0.3,
            1.0,
            2.0,
            25.0,
            0.006,
            0.02,
            0.02,
            0.01,
            0.02,
            0.003,
            14.5,
            20.0,
            95.0,
            650.0,
            0.13,
            0.2,
            0.15,
            0.08,
            0.28,
            0.08,
        ]
        body = {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]}
        status, reply, revision = deployer.predict("breast-cancer", body)
        assert status == 200 and revision == "breast-cancer-predictor-00001"
        (probability,) = reply["outputs"][0]["data"]
        assert 0.0 <= probability <= 1.0
    finally:
        deployer.stop_all()
