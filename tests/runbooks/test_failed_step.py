"""docs/runbooks/failed-step.md: a step fails; find it, read its log, resume, or fix and replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runbook_helpers import PIPELINES, runbook, wb, wb_json


def test_the_runbook_names_the_commands_used_here() -> None:
    text = runbook("failed-step.md")
    for command in ("workbench runs show", "workbench runs logs", "workbench runs resume"):
        assert command in text


def test_resume_reruns_only_the_failed_step(tmp_path: Path) -> None:
    lookup = tmp_path / "lookup.txt"
    failed = wb("run", str(PIPELINES / "failing_step.py"), "-p", f"lookup={lookup}", "--json")
    assert failed.returncode == 1
    run_id = json.loads(failed.stdout)["run_id"]

    # the symptom, then where it is
    shown = wb_json("runs", "show", run_id)
    states = {t["name"]: t["status"] for t in shown["tasks"]}
    assert states["join"].lower() == "failed" and states["prepare"].lower() == "succeeded"
    logs = wb("runs", "logs", run_id)
    assert f"FileNotFoundError: lookup table {lookup} is missing" in logs.stdout

    # the cause is outside the code: fix it and resume the same run
    lookup.write_text("a b c\n")
    resumed = wb("runs", "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "SUCCEEDED" and result["outputs"]["Output"] == 7
    attempts = {t["name"]: t["attempts"] for t in wb_json("runs", "show", run_id)["tasks"]}
    assert attempts["prepare"] == 1  # not run again


@pytest.mark.slow
def test_a_fixed_step_replays_with_the_rest_from_the_cache(tmp_path: Path) -> None:
    module = tmp_path / "failing_step.py"
    lookup = tmp_path / "lookup.txt"
    lookup.write_text("a b c\n")
    source = (PIPELINES / "failing_step.py").read_text()
    module.write_text(source.replace("len(g.read().split())", "len(g.read().split()) / 0"))
    failed = wb("run", str(module), "-p", f"lookup={lookup}", "--json")
    assert failed.returncode == 1
    assert "ZeroDivisionError" in wb("runs", "logs", json.loads(failed.stdout)["run_id"]).stdout

    module.write_text(source)  # the fix
    replayed = wb("run", str(module), "-p", f"lookup={lookup}", "--json")
    assert replayed.returncode == 0, replayed.stderr
    cached = {t["name"]: t["cached"] for t in json.loads(replayed.stdout)["tasks"]}
    assert cached == {"prepare": True, "join": False}
