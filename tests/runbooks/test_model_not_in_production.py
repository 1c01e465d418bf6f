"""docs/runbooks/model-not-in-production.md: the run succeeded, the model is not in the registry
(a failed gate) or not in production (an approval that waits); find why and get it there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runbook_helpers import PIPELINES, REPO, runbook, wb, wb_json

pytestmark = pytest.mark.slow


def test_the_runbook_names_the_commands_used_here() -> None:
    text = runbook("model-not-in-production.md")
    for command in (
        "workbench runs show",
        "workbench models show",
        "workbench approvals list",
        "workbench approve",
        "workbench lineage",
    ):
        assert command in text


def test_a_failed_gate_registers_nothing_and_says_so() -> None:
    module = str(PIPELINES / "gated_model.py")
    run = wb_json("run", module, "-p", "accuracy=0.8")
    assert run["status"] == "SUCCEEDED"  # the symptom: a green run ...
    missing = wb("models", "show", "gated-model")  # ... and no model
    assert missing.returncode == 2
    assert "no registered model named 'gated-model'" in missing.stderr

    shown = wb("runs", "show", run["run_id"])
    assert "gate failed: accuracy >= 0.9 (got 0.8); nothing registered" in shown.stdout
    evaluate = next(
        t for t in wb_json("runs", "show", run["run_id"])["tasks"] if t["name"] == "evaluate"
    )
    assert evaluate["outputs"]["parameters"] == {"model_uri": "", "promoted": False, "version": ""}

    passed = wb_json("run", module, "-p", "accuracy=0.95")
    (version,) = wb_json("models", "show", "gated-model")["versions"]
    assert version["aliases"] == ["production", "staging"]
    assert version["tags"]["workbench.gate"] == "passed"
    assert version["produced_by"]["run_id"] == passed["run_id"]
    lineage = wb("lineage", "models:/gated-model/1")
    assert lineage.returncode == 0, lineage.stderr
    assert passed["run_id"] in lineage.stdout


def test_a_version_waiting_for_approval_reaches_production_when_approved(tmp_path: Path) -> None:
    module = tmp_path / "manual_model.py"
    source = (PIPELINES / "gated_model.py").read_text()
    module.write_text(
        source.replace('promote_to="production",', 'promote_to="production", approval="manual",')
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "workbench_dsl", "run", str(module), "--json"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        pending: list = []
        while not pending and time.monotonic() < deadline and run.poll() is None:
            time.sleep(1)
            listed = wb("approvals", "list", "--json")
            pending = json.loads(listed.stdout) if listed.returncode == 0 else []
        assert pending, "the version never waited for approval"
        assert (pending[0]["model"], pending[0]["version"]) == ("gated-model", "1")
        # not in production while it waits
        (version,) = wb_json("models", "show", "gated-model")["versions"]
        assert "production" not in version["aliases"]
        approved = wb("approve", "gated-model", "1", "--comment", "metrics checked")
        assert approved.returncode == 0, approved.stderr
        out, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-2000:]
    assert json.loads(out)["status"] == "SUCCEEDED"
    (version,) = wb_json("models", "show", "gated-model")["versions"]
    assert "production" in version["aliases"]
