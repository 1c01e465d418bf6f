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


GUARDED = """
from workbench_dsl import develop, pipeline, serve


@develop(preset="sklearn")
def make_model(where: str) -> str:
    import mlflow.sklearn
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier().fit([[0, 0], [1, 1]], [1, 1])
    mlflow.sklearn.save_model(model, where, serialization_format="pickle")
    return where


@serve(endpoint="guarded", auth="token", protocol="v1")
def predict(model, instances):
    return model.predict(instances).tolist()


@pipeline(name="guarded")
def guarded(where: str):
    m = make_model(where=where)
    predict(model_uri=m.output)
"""


@pytest.mark.slow
def test_a_run_that_makes_a_token_endpoint_leaves_no_secret_and_nothing_others_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from workbench_dsl.cli.app import app

    home = tmp_path / "fresh" / ".workbench"  # created by the run
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    module = tmp_path / "guarded.py"
    model = tmp_path / "model"
    module.write_text(GUARDED, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(home)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench_dsl",
            "run",
            str(module),
            "-p",
            f"where={model}",
            "--json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),  # a usual login umask: the root must not care
    )
    deployer = local_deployer()
    try:
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["status"] == "SUCCEEDED"
        # The run made no token: the endpoint refuses everyone, and its step log says why.
        assert deployer.predict("guarded", {"instances": [[0, 0]]})[0] == 401
        logs = b"".join(p.read_bytes() for p in home.rglob("*.log") if p.is_file())
        assert b"workbench endpoints token guarded" in logs
        # Its owner makes one, on their terminal.
        out = CliRunner().invoke(app, ["endpoints", "token", "guarded"])
        assert out.exit_code == 0, out.output
        token = out.stdout.strip().splitlines()[0]
        assert len(token) >= 32
        assert deployer.predict("guarded", {"instances": [[0, 0]]}, token=token)[:2] == (
            200,
            {"predictions": [1]},
        )
        listed = CliRunner().invoke(app, ["endpoints", "list", "--json"])
        assert listed.exit_code == 0 and token not in listed.stdout
        # Nowhere under the root in the clear.
        grep = subprocess.run(["grep", "-r", "-l", "-F", token, str(home)], capture_output=True)
        assert grep.returncode == 1 and grep.stdout == b"", grep.stdout
        # And nothing under it for group or others.
        assert oct(os.stat(home).st_mode & 0o777) == "0o700"
        opened = [
            f"{p} {oct(p.lstat().st_mode & 0o777)}"
            for p in home.rglob("*")
            if not p.is_symlink() and p.lstat().st_mode & 0o077
        ]
        assert opened == []
    finally:
        deployer.stop_all()
