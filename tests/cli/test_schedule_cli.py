"""`workbench schedule` (local target) and `workbench scheduler --once`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()
PIPELINE = """\
pipelineInfo: {name: tiny}
root:
  dag: {tasks: {}}
  inputDefinitions:
    parameters:
      n: {parameterType: NUMBER_INTEGER, defaultValue: 1.0}
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
"""


def wb(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout if r.exit_code == 0 else r.output


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(PIPELINE)
    return "tiny.yaml"


def test_schedule_lifecycle(pipeline: str, tmp_path: Path) -> None:
    code, out = wb(
        "schedule",
        "add",
        pipeline,
        "--cron",
        "0 3 * * 0",
        "-p",
        "n=2",
        "--timezone",
        "Europe/Berlin",
        "--no-catchup",
        "--json",
    )
    assert code == 0, out
    s = json.loads(out)
    assert (s["name"], s["cron"], s["timezone"], s["catchup"], s["params"]) == (
        "tiny",
        "0 3 * * 0",
        "Europe/Berlin",
        False,
        {"n": "2"},
    )
    assert s["pipeline"] == str(tmp_path / "tiny.yaml")  # absolute: the scheduler runs anywhere
    code, out = wb("schedule", "add", pipeline, "--cron", "0 3 * * 0")
    assert code == 2 and "a schedule named 'tiny' exists" in out
    code, out = wb("schedule", "list", "--json")
    assert [x["name"] for x in json.loads(out)] == ["tiny"]
    code, out = wb("schedule", "pause", "tiny", "--json")
    assert json.loads(out)["paused"] is True and json.loads(out)["next_ticks"] == []
    code, out = wb("schedule", "resume", "tiny", "--json")
    assert json.loads(out)["paused"] is False
    assert wb("schedule", "pause", "tiny") == (0, "paused tiny\n")  # without --json: one line
    assert wb("schedule", "resume", "tiny") == (0, "resumed tiny\n")
    code, out = wb(
        "schedule",
        "update",
        "tiny",
        "--cron",
        "*/5 * * * *",
        "-p",
        "n=7",
        "--max-concurrency",
        "3",
        "--json",
    )
    assert code == 0, out
    u = json.loads(out)
    assert (u["cron"], u["params"], u["max_concurrency"]) == ("*/5 * * * *", {"n": "7"}, 3)
    code, out = wb("schedule", "show", "tiny")
    assert code == 0 and "cron: */5 * * * *" in out and "next: " in out
    code, out = wb("schedule", "update", "tiny", "-p", "n=lots")
    assert code == 2 and "parameter 'n' expects an integer" in out
    code, out = wb("schedule", "delete", "tiny")
    assert code == 0
    code, out = wb("schedule", "show", "tiny")
    assert code == 2 and "no schedule named 'tiny'" in out


def test_add_checks_everything_up_front(pipeline: str) -> None:
    assert (
        "unknown parameter 'm'"
        in wb("schedule", "add", pipeline, "--cron", "0 3 * * 0", "-p", "m=1")[1]
    )
    assert (
        "unknown timezone"
        in wb("schedule", "add", pipeline, "--cron", "0 3 * * 0", "--timezone", "Nowhere")[1]
    )
    assert "invalid hour field" in wb("schedule", "add", pipeline, "--cron", "0 99 * * 0")[1]
    code, out = wb("schedule", "add", pipeline, "--cron", "0 3 * * 0", "--experiment", "")
    assert code == 2 and "bad experiment name ''" in out, out
    assert "no such file" in wb("schedule", "add", "missing.yaml", "--cron", "0 3 * * 0")[1]
    assert "--target must be local or kfp" in wb("schedule", "list", "--target", "argo")[1]


def test_update_with_nothing_to_change_says_so(pipeline: str) -> None:
    assert wb("schedule", "add", pipeline, "--cron", "0 3 * * 0")[0] == 0
    before = json.loads(wb("schedule", "show", "tiny", "--json")[1])
    code, out = wb("schedule", "update", "tiny")
    assert code == 2
    assert (
        out.startswith("error: nothing to change: give --pipeline, --cron") and out.count("\n") == 1
    )
    assert json.loads(wb("schedule", "show", "tiny", "--json")[1]) == before


def test_scheduler_once_with_nothing_due(pipeline: str) -> None:
    wb("schedule", "add", pipeline, "--cron", "0 3 1 1 *")
    code, out = wb("scheduler", "--once")
    assert code == 0 and out == ""
