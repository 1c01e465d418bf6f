"""`workbench lineage`: text, --json, --dot, every kind of target, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.backends.lineage import LineageRecorder
from workbench_dsl.cli.app import app

runner = CliRunner()


def _record(tmp_path: Path) -> Path:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    art = {"uri": str(data), "sha256": "c" * 64, "size": 8, "type": "system.Dataset"}
    rec = LineageRecorder()
    rec.run_started("run-abc123", "churn", {})
    rec.task_finished(
        "run-abc123", "load", status="SUCCEEDED", outputs={"artifacts": {"data": [art]}}
    )
    rec.task_finished(
        "run-abc123",
        "register",
        status="SUCCEEDED",
        inputs={"artifacts": {"data": [art]}},
        outputs={"parameters": {"model_uri": "models:/churn/2"}},
    )
    rec.task_finished(
        "run-abc123",
        "deploy",
        status="SUCCEEDED",
        inputs={"parameters": {"model_uri": "models:/churn/2", "endpoint": "churn"}},
        outputs={"parameters": {"url": "http://127.0.0.1:9000", "revision": "5"}},
    )
    rec.run_finished("run-abc123", "SUCCEEDED")
    rec.flush()
    return data


def test_lineage_targets_text_json_and_dot(tmp_path: Path) -> None:
    data = _record(tmp_path)
    for target in (
        "endpoint:churn",
        "models:/churn/2",
        "models:/churn",
        "churn/load/data",
        str(data),
        "run:run-abc",
        "run-abc123",
    ):
        r = runner.invoke(app, ["lineage", target])
        assert r.exit_code == 0, (target, r.output)
    r = runner.invoke(app, ["lineage", "endpoint:churn"])
    assert (
        r.stdout.splitlines()[0] == "endpoint:churn revision 5 (http://127.0.0.1:9000)  [endpoint]"
    )
    assert (
        "<- models:/churn/2" in r.stdout and "<- churn/load/data @ sha256:cccccccccccc" in r.stdout
    )
    r = runner.invoke(app, ["lineage", "churn/load/data", "--json"])
    doc = json.loads(r.stdout)
    assert doc["nodes"][doc["target"]]["rows"] == 1
    assert {doc["nodes"][a]["name"] for a, b in doc["edges"]} >= {
        "churn/load/data",
        "churn.register",
    }
    r = runner.invoke(app, ["lineage", "models:/churn/2", "--dot"])
    assert r.stdout.startswith("digraph lineage {") and r.stdout.rstrip().endswith("}")
    assert "shape=house" in r.stdout and "->" in r.stdout
    r = runner.invoke(app, ["lineage", "--json"])
    overview = json.loads(r.stdout)
    assert [m["name"] for m in overview["model_versions"]] == ["models:/churn"]
    assert [e["name"] for e in overview["endpoints"]] == ["endpoint:churn"]


def test_lineage_errors_are_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["lineage", "models:/churn/1"])
    assert r.exit_code == 2 and "no lineage recorded yet" in r.output
    _record(tmp_path)
    r = runner.invoke(app, ["lineage", "models:/nope/1"])
    assert r.exit_code == 2
    assert (
        r.output.count("\n") == 1 and "nothing in the lineage matches 'models:/nope/1'" in r.output
    )
    r = runner.invoke(app, ["lineage"])
    assert r.exit_code == 0 and "endpoint:churn" in r.stdout


def test_push_to_a_backend_url_that_is_not_one_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(tmp_path)
    monkeypatch.setenv("OPENLINEAGE_URL", "not-a-url")
    r = runner.invoke(app, ["lineage", "--push", "--json"])
    assert r.exit_code == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: cannot use the OpenLineage backend not-a-url: "), lines[0]
    assert "internal error" not in lines[0]
