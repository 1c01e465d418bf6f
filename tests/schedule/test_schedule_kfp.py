"""KFP recurring runs through kfp.Client, asserted at the HTTP boundary (exact requests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kfp_api_double import EXPERIMENT, KfpApiDouble, experiments, recurring_run
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


@pytest.fixture
def kfp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    d = KfpApiDouble()
    d.routes[("GET", "/apis/v2beta1/experiments")] = experiments(found=True)
    d.routes[("GET", "/apis/v2beta1/runs")] = (200, {"runs": []})
    yield d
    d.close()


def cli(kfp: KfpApiDouble, *args: str) -> Any:
    return runner.invoke(app, ["schedule", *args, "--target", "kfp", "--host", kfp.url, "--json"])


def write_pipeline(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(PIPELINE)
    return p


def test_add_creates_a_recurring_run_with_six_field_cron(kfp: KfpApiDouble, tmp_path: Path) -> None:
    kfp.routes[("GET", "/apis/v2beta1/recurringruns")] = (200, {})
    kfp.routes[("POST", "/apis/v2beta1/recurringruns")] = lambda m, p, q, b: (
        200,
        {**b, "recurring_run_id": "rr-1"},
    )
    r = cli(
        kfp,
        "add",
        str(write_pipeline(tmp_path)),
        "--cron",
        "0 3 * * 7",
        "-p",
        "n=5",
        "--no-catchup",
        "--max-concurrency",
        "2",
        "--name",
        "nightly",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["recurring_run_id"] == "rr-1"
    assert kfp.calls() == [
        ("GET", "/apis/v2beta1/healthz"),
        ("GET", "/apis/v2beta1/recurringruns"),
        ("GET", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/recurringruns"),
    ]
    assert (
        json.loads(kfp.requests[1]["query"]["filter"])["predicates"][0]["stringValue"] == "nightly"
    )
    body = kfp.requests[3]["body"]
    assert body == {
        "display_name": "nightly",
        "experiment_id": EXPERIMENT["experiment_id"],
        "max_concurrency": 2,
        "mode": "ENABLE",
        "no_catchup": True,
        "pipeline_spec": {
            "pipelineInfo": {"name": "tiny"},
            "root": {
                "dag": {},
                "inputDefinitions": {
                    "parameters": {"n": {"parameterType": "NUMBER_INTEGER", "defaultValue": 1.0}}
                },
            },
            "schemaVersion": "2.1.0",
            "sdkVersion": "kfp-2.17.0",
        },
        "runtime_config": {"parameters": {"n": 5}},
        "trigger": {"cron_schedule": {"cron": "0 0 3 * * 0"}},
    }


def test_add_refuses_timezones_and_bad_cron_before_any_request(
    kfp: KfpApiDouble, tmp_path: Path
) -> None:
    p = str(write_pipeline(tmp_path))
    r = cli(kfp, "add", p, "--cron", "0 3 * * 0", "--timezone", "Europe/Berlin")
    assert r.exit_code == 2 and "KFP evaluates recurring runs' cron in UTC" in r.output
    r = cli(kfp, "add", p, "--cron", "0 3 * *")
    assert r.exit_code == 2 and "has 4 field(s)" in r.output
    assert [c for c in kfp.calls() if c[0] != "GET" or "healthz" not in c[1]] == []


def test_pause_resume_delete(kfp: KfpApiDouble) -> None:
    kfp.routes[("GET", "/apis/v2beta1/recurringruns")] = (
        200,
        {"recurringRuns": [recurring_run("rr-1", "nightly")]},
    )
    for path in (
        "/apis/v2beta1/recurringruns/rr-1:disable",
        "/apis/v2beta1/recurringruns/rr-1:enable",
    ):
        kfp.routes[("POST", path)] = (200, {})
    kfp.routes[("DELETE", "/apis/v2beta1/recurringruns/rr-1")] = (200, {})
    assert cli(kfp, "pause", "nightly").exit_code == 0
    assert cli(kfp, "resume", "nightly").exit_code == 0
    assert cli(kfp, "delete", "nightly").exit_code == 0
    writes = [c for c in kfp.calls() if c[0] != "GET"]
    assert writes == [
        ("POST", "/apis/v2beta1/recurringruns/rr-1:disable"),
        ("POST", "/apis/v2beta1/recurringruns/rr-1:enable"),
        ("DELETE", "/apis/v2beta1/recurringruns/rr-1"),
    ]


def test_delete_refuses_while_runs_are_in_flight(kfp: KfpApiDouble) -> None:
    kfp.routes[("GET", "/apis/v2beta1/recurringruns")] = (
        200,
        {"recurringRuns": [recurring_run("rr-1", "nightly")]},
    )
    kfp.routes[("GET", "/apis/v2beta1/runs")] = (
        200,
        {"runs": [{"run_id": "x", "recurring_run_id": "rr-1", "state": "RUNNING"}]},
    )
    r = cli(kfp, "delete", "nightly")
    assert (
        r.exit_code == 2
        and "1 run(s) in flight" in r.output
        and "kubeflow/pipelines#12573" in r.output
    )
    assert not [c for c in kfp.calls() if c[0] == "DELETE"]


def test_update_recreates_under_the_same_name_without_killing_runs_in_flight(
    kfp: KfpApiDouble,
) -> None:
    old = recurring_run(
        "rr-1",
        "nightly",
        params={"n": 1},
        spec={
            "pipelineInfo": {"name": "tiny"},
            "root": {
                "dag": {"tasks": {}},
                "inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}},
            },
        },
    )
    kfp.routes[("GET", "/apis/v2beta1/recurringruns")] = (200, {"recurringRuns": [old]})
    kfp.routes[("POST", "/apis/v2beta1/recurringruns")] = lambda m, p, q, b: (
        200,
        {**b, "recurring_run_id": "rr-2"},
    )
    kfp.routes[("POST", "/apis/v2beta1/recurringruns/rr-1:disable")] = (200, {})
    kfp.routes[("GET", "/apis/v2beta1/runs")] = (
        200,
        {"runs": [{"run_id": "x", "recurring_run_id": "rr-1", "state": "RUNNING"}]},
    )
    r = cli(kfp, "update", "nightly", "--cron", "30 4 * * *", "-p", "n=9")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["recurring_run_id"], out["replaced"], out["replaced_deleted"]) == (
        "rr-2",
        "rr-1",
        False,
    )
    writes = [c for c in kfp.calls() if c[0] != "GET"]
    # create the new one, disable (not delete) the old one: its run in flight goes on
    assert writes == [
        ("POST", "/apis/v2beta1/recurringruns"),
        ("POST", "/apis/v2beta1/recurringruns/rr-1:disable"),
    ]
    body = next(
        r["body"]
        for r in kfp.requests
        if r["method"] == "POST" and r["path"] == "/apis/v2beta1/recurringruns"
    )
    assert body["display_name"] == "nightly"
    assert body["trigger"] == {"cron_schedule": {"cron": "0 30 4 * * *"}}
    assert body["runtime_config"] == {"parameters": {"n": 9}}
    assert body["experiment_id"] == "exp-1" and body["pipeline_spec"]["pipelineInfo"] == {
        "name": "tiny"
    }
    runs_query = next(r["query"] for r in kfp.requests if r["path"] == "/apis/v2beta1/runs")
    assert runs_query["experiment_id"] == "exp-1"

    # later, with the old one idle, it is deleted
    kfp.requests.clear()
    kfp.routes[("GET", "/apis/v2beta1/runs")] = (
        200,
        {"runs": [{"run_id": "x", "recurring_run_id": "rr-1", "state": "SUCCEEDED"}]},
    )
    newer = recurring_run("rr-2", "nightly", created="2024-02-01T00:00:00Z")
    kfp.routes[("GET", "/apis/v2beta1/recurringruns")] = (
        200,
        {"recurringRuns": [{**old, "mode": "DISABLE"}, newer]},
    )
    kfp.routes[("DELETE", "/apis/v2beta1/recurringruns/rr-1")] = (200, {})
    from workbench_dsl.schedule.kfp import KfpSchedules
    from workbench_dsl.schedule.kfp_client import KfpConnection

    assert KfpSchedules(KfpConnection(host=kfp.url)).cleanup("nightly") == ["rr-1"]
    assert ("DELETE", "/apis/v2beta1/recurringruns/rr-1") in kfp.calls()


def test_list_and_show(kfp: KfpApiDouble) -> None:
    kfp.routes[("GET", "/apis/v2beta1/recurringruns")] = (
        200,
        {"recurringRuns": [recurring_run("rr-1", "nightly")]},
    )
    kfp.routes[("GET", "/apis/v2beta1/recurringruns/rr-1")] = (
        200,
        recurring_run("rr-1", "nightly"),
    )
    r = cli(kfp, "list")
    assert [x["name"] for x in json.loads(r.stdout)] == ["nightly"]
    r = cli(kfp, "show", "nightly")
    data = json.loads(r.stdout)
    assert (data["cron"], data["paused"], data["catchup"]) == ("0 0 3 * * 0", False, True)
