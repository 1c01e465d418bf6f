"""docs/runbooks/sweep-trials.md: a sweep whose trials all fail, or hang; find why, bound it,
and run it again with the steps before it from the cache."""

from __future__ import annotations

import json

import pytest
from runbook_helpers import PIPELINES, runbook, wb, wb_json

PIPELINE = str(PIPELINES / "sweep_trials.py")


def test_the_runbook_names_the_commands_used_here() -> None:
    text = runbook("sweep-trials.md")
    for command in (
        "workbench runs show",
        "workbench runs logs",
        "workbench runs cancel",
        'timeout="',
        "max_failed_trials",
    ):
        assert command in text


def test_all_trials_failing_shows_the_first_error_and_each_trials_log() -> None:
    failed = wb("run", PIPELINE, "-p", "rows=0", "--json")
    assert failed.returncode == 1
    run_id = json.loads(failed.stdout)["run_id"]
    shown = wb("runs", "show", run_id)
    assert "SweepFailed: no trial succeeded; first failure: ValueError: no rows to fit" in (
        shown.stdout
    )
    logs = wb("runs", "logs", run_id, "tune").stdout
    assert "[trial 0] ValueError: no rows to fit (rows=0)" in logs
    assert "[trial 1] ValueError: no rows to fit (rows=0)" in logs

    fixed = wb_json("run", PIPELINE, "-p", "rows=10")
    assert fixed["status"] == "SUCCEEDED" and 0.0 <= fixed["outputs"]["Output"] <= 1.0


@pytest.mark.slow
def test_a_hanging_sweep_ends_at_its_timeout_and_reruns_from_the_cache() -> None:
    hung = wb("run", PIPELINE, "-p", "hang_s=600", "--json")
    assert hung.returncode == 1
    run_id = json.loads(hung.stdout)["run_id"]
    tasks = {t["name"]: t for t in wb_json("runs", "show", run_id)["tasks"]}
    assert tasks["tune"]["error"] == "timed out after 15s"

    again = wb_json("run", PIPELINE, "-p", "hang_s=0")
    assert again["status"] == "SUCCEEDED"
    cached = {t["name"]: t["cached"] for t in again["tasks"]}
    assert cached == {"prepare": True, "tune": False}
