"""`workbench models list|show` and `workbench approve|reject|approvals list` on a real local registry."""

from __future__ import annotations

import getpass
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry
from workbench_dsl.cli.app import app
from workbench_dsl.engine.approval_channel import ApprovalChannel
from workbench_dsl.paths import LocalRoot


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not path.exists():
        open_registry(f"sqlite:///{path}").models()
    return path


@pytest.fixture
def registry(workbench_home: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from sklearn.dummy import DummyClassifier

    monkeypatch.delenv("WORKBENCH_RUN_ID", raising=False)
    shutil.copy(mlflow_template, workbench_home / "mlflow.db")
    reg = open_registry()
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    for accuracy in (0.91, 0.95):
        run = reg.log_evaluation(
            experiment="churn",
            run_name="evaluate",
            tags={},
            params={},
            metrics={"accuracy": accuracy},
        )
        tags = {
            "workbench.run_id": "run-1",
            "workbench.pipeline": "churn",
            "workbench.step": "evaluate",
        }
        reg.register(name="churn", model=model, flavor="sklearn", run_id=run, tags=tags)
    reg.set_alias("churn", "staging", "2")
    # Run run-1's engine (this process) waits on version 2.
    channel = ApprovalChannel(LocalRoot(workbench_home), "run-1", "churn").open()
    channel.request(
        "churn", "2", promote_to="production", timeout_s=3600, tracking_uri=None, step="evaluate"
    )
    yield reg
    channel.close("SUCCEEDED")


runner = CliRunner()


def test_models_list_and_show(registry) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    (model,) = json.loads(result.stdout)
    assert (model["name"], model["latest_version"], model["aliases"]) == (
        "churn",
        "2",
        {"staging": "2"},
    )

    text = runner.invoke(app, ["models", "list"]).stdout
    assert text.startswith("churn  latest version 2 of 2  staging -> 2  updated ")

    result = runner.invoke(app, ["models", "show", "churn", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    newest, oldest = shown["versions"]
    assert (newest["version"], newest["aliases"], newest["metrics"]) == (
        "2",
        ["staging"],
        {"accuracy": 0.95},
    )
    assert newest["approval"]["state"] == "pending"
    assert newest["approval"]["command"] == "workbench approve churn 2"
    assert newest["produced_by"] == {"run_id": "run-1", "pipeline": "churn", "step": "evaluate"}
    assert oldest["approval"] is None

    table = runner.invoke(app, ["models", "show", "churn"])
    assert table.exit_code == 0
    assert "  version 2  aliases: staging  created " in table.stdout
    assert "    metrics: accuracy=0.95\n" in table.stdout
    assert "    approval: pending; approve with: workbench approve churn 2\n" in table.stdout
    assert "    produced by: churn run run-1 / evaluate\n" in table.stdout


def test_unknown_model_is_exit_2(registry) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["models", "show", "nope"])
    assert result.exit_code == 2
    assert "no registered model named 'nope'" in result.output


def test_approvals_list_shows_the_exact_command(registry) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["approvals", "list"])
    assert result.exit_code == 0
    assert "churn 2  waiting since" in result.stdout
    assert "    workbench approve churn 2\n" in result.stdout
    listed = json.loads(runner.invoke(app, ["approvals", "list", "--json"]).stdout)
    assert [(a["model"], a["version"], a["state"]) for a in listed] == [("churn", "2", "pending")]


def test_approve_records_who_and_promotes(registry) -> None:  # type: ignore[no-untyped-def]
    me = getpass.getuser()
    result = runner.invoke(app, ["approve", "churn", "2", "--comment", "good", "--by", "alice"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"churn version 2 approved by {me} (claimed: alice); alias production -> version 2"
    )
    v = registry.get_version("churn", "2")
    assert "production" in v.aliases and v.tags["workbench.approval.comment"] == "good"
    again = runner.invoke(app, ["approve", "churn", "2"])
    assert again.exit_code == 2 and f"already approved by {me} (claimed: alice)" in again.output
    assert (
        runner.invoke(app, ["approvals", "list"]).stdout.strip()
        == "nothing is waiting for approval"
    )


def test_reject_needs_a_comment(registry) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["reject", "churn", "2"])
    assert result.exit_code == 2 and "a rejection needs a reason: pass --comment" in result.output
    result = runner.invoke(app, ["reject", "churn", "2", "-m", "drift", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["state"] == "rejected"


def test_a_version_no_live_run_waits_on_is_refused(registry) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["approve", "churn", "1"])
    assert result.exit_code == 2
    assert "churn version 1 is not waiting for approval" in result.output
    approvals.record_request(registry, "churn", "1", timeout_s=60, run_id="run-0")  # engine gone
    listed = json.loads(runner.invoke(app, ["approvals", "list", "--json"]).stdout)
    assert [(a["version"], a["state"]) for a in listed] == [("1", "expired"), ("2", "pending")]
    result = runner.invoke(app, ["approve", "churn", "1"])
    assert result.exit_code == 2
    assert "no live run waits on churn version 1: run run-0 is not running" in result.output
    assert registry.get_version("churn", "1").tags["workbench.approval"] == "expired"
