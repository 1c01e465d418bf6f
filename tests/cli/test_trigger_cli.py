"""`workbench trigger` (local) and `workbench scheduler --once` starting a triggered run."""

from __future__ import annotations

import json
import time
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
      path: {parameterType: STRING, defaultValue: ""}
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
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "old.csv").write_text("a\n")
    return "tiny.yaml"


def test_trigger_lifecycle(pipeline: str) -> None:
    code, out = wb(
        "trigger",
        "add",
        pipeline,
        "--on",
        "dataset:landing/*.csv",
        "--event-param",
        "path",
        "-p",
        "n=3",
        "--json",
    )
    assert code == 0, out
    t = json.loads(out)
    assert (t["name"], t["on"], t["params"], t["event_param"], t["watching"]) == (
        "tiny",
        "dataset:landing/*.csv",
        {"n": "3"},
        "path",
        1,
    )
    code, out = wb("trigger", "list", "--json")
    assert [r["name"] for r in json.loads(out)] == ["tiny"]
    code, out = wb("trigger", "pause", "tiny", "--json")
    assert json.loads(out)["paused"] is True
    code, out = wb("trigger", "resume", "tiny")
    assert (code, out.strip()) == (0, "resumed tiny")
    code, out = wb("trigger", "show", "tiny", "--json")
    assert json.loads(out)["firings"] == []
    code, out = wb("trigger", "delete", "tiny")
    assert code == 0
    code, out = wb("trigger", "show", "tiny")
    assert code == 2 and "no trigger named 'tiny'" in out


def test_scheduler_once_runs_the_pipeline_on_new_data(pipeline: str, tmp_path: Path) -> None:
    code, out = wb(
        "trigger",
        "add",
        pipeline,
        "--on",
        "dataset:landing/*.csv",
        "--event-param",
        "path",
        "--name",
        "ingest",
    )
    assert code == 0, out
    (tmp_path / "landing" / "new.csv").write_text("b\n")
    code, out = wb("scheduler", "--once")
    assert (
        code == 0 and "started trigger:ingest@dataset:landing/*.csv changed landing/new.csv" in out
    ), out
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, out = wb("trigger", "show", "ingest", "--json")
        firing = json.loads(out)["firings"][0]
        if firing["status"] not in ("STARTING", "RUNNING"):
            break
        time.sleep(0.5)
        wb("scheduler", "--once")
    assert firing["status"] == "SUCCEEDED", firing
    assert firing["value"] == str((tmp_path / "landing" / "new.csv").resolve())
    _, out = wb("runs", "list", "--json")
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == [firing["run_id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--on", "weather:rain"], "unknown event kind 'weather'"),
        (["--on", "drift:churn", "--threshold", "psi"], "bad --threshold 'psi'"),
        (["--on", "drift:churn", "--threshold", "p=2"], "bad --threshold p='2'"),
        (["--on", "run:up", "--threshold", "psi=1"], "--threshold applies to drift: events only"),
        (
            [
                "--on",
                "drift:churn",
                "--target",
                "kfp",
                "--cron",
                "*/5 * * * *",
                "--output",
                "w.yaml",
            ],
            "set [cluster] request_log_uri",
        ),
        (["--on", "run:tiny"], "each time it finishes itself"),
        (["--on", "run:up", "--max-age", "1h"], "--max-age applies to dataset: events only"),
        (["--on", "dataset:x", "--max-age", "soon"], "bad duration 'soon'"),
        (["--on", "run:up", "--event-param", "nope"], "'nope'"),
        (["--on", "run:up", "--experiment", ""], "bad experiment name ''"),
        (
            ["--on", "dataset:x", "--event-param", "n"],
            "--event-param n: the event gives the changed file's path, a string, but input 'n' is an int",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(pipeline: str, args: list[str], message: str) -> None:
    code, out = wb("trigger", "add", pipeline, *args)
    assert code == 2 and message in out, out
    assert "Traceback" not in out
    _, out = wb("trigger", "list", "--json")
    assert json.loads(out) == []


def test_a_pipeline_chained_on_anothers_success(pipeline: str, tmp_path: Path) -> None:
    (tmp_path / "up.yaml").write_text(PIPELINE.replace("name: tiny", "name: up"))
    code, out = wb(
        "trigger",
        "add",
        pipeline,
        "--on",
        "run:up:SUCCEEDED",
        "--event-param",
        "path",
        "--name",
        "after-up",
        "--json",
    )
    assert code == 0, out
    code, out = wb("run", "up.yaml", "--json")
    assert code == 0, out
    upstream = json.loads(out)["run_id"]
    code, out = wb("scheduler", "--once")
    assert "started trigger:after-up@run:up:SUCCEEDED run " + upstream in out, out
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        wb("scheduler", "--once")
        _, out = wb("trigger", "show", "after-up", "--json")
        (firing,) = json.loads(out)["firings"]
        if firing["status"] not in ("STARTING", "RUNNING"):
            break
        time.sleep(0.5)
    assert (firing["status"], firing["value"]) == ("SUCCEEDED", upstream), firing
    _, out = wb("runs", "show", firing["run_id"], "--json")
    assert json.loads(out)["parameters"]["path"] == upstream
    code, out = wb("scheduler", "--once")  # the same upstream run never fires twice
    assert "started" not in out
