"""Approvals as MLflow version tags: who and when, final decisions, expiry, no self-approval."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not path.exists():
        open_registry(f"sqlite:///{path}").models()
    return path


@pytest.fixture
def registry(workbench_home: Path, mlflow_template: Path):  # type: ignore[no-untyped-def]
    from sklearn.dummy import DummyClassifier

    shutil.copy(mlflow_template, workbench_home / "mlflow.db")
    reg = open_registry()
    run = reg.log_evaluation(experiment="e", run_name="r", tags={}, params={}, metrics={})
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    tags = {
        "workbench.run_id": "run-7",
        "workbench.pipeline": "churn",
        "workbench.step": "evaluate",
    }
    for _ in range(2):
        reg.register(name="churn", model=model, flavor="sklearn", run_id=run, tags=tags)
    reg.set_alias("churn", "staging", "1")
    return reg


def test_approval_records_who_when_and_sets_promote_to(registry) -> None:  # type: ignore[no-untyped-def]
    pending = approvals.request(registry, "churn", "1", timeout_s=60, promote_to="production")
    assert pending.command == "workbench approve churn 1"
    assert [a.version for a in approvals.pending(registry)] == ["1"]
    listed = approvals.pending(registry)[0].to_json()
    assert listed["state"] == "pending" and listed["run_id"] == "run-7"
    assert listed["command"] == "workbench approve churn 1"

    done = approvals.decide(registry, "churn", "1", approve=True, by="alice", environ={})
    assert (done.state, done.by) == ("approved", "alice")
    assert done.at is not None and done.at.endswith("+00:00")
    assert registry.resolve("models:/churn@production").version == "1"
    assert approvals.pending(registry) == []


def test_default_approver_is_the_os_user(registry, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    approvals.request(registry, "churn", "1", timeout_s=60)
    assert approvals.decide(registry, "churn", "1", approve=True, environ={}).by == "carol"


def test_a_pipeline_cannot_approve_its_own_step(registry) -> None:  # type: ignore[no-untyped-def]
    approvals.request(registry, "churn", "1", timeout_s=60)
    with pytest.raises(
        approvals.ApprovalError, match="a pipeline cannot approve its own step: run run-7"
    ):
        approvals.decide(
            registry, "churn", "1", approve=True, environ={"WORKBENCH_RUN_ID": "run-7"}
        )
    with pytest.raises(approvals.ApprovalError, match="cannot reject its own step"):
        approvals.decide(
            registry,
            "churn",
            "1",
            approve=False,
            comment="x",
            environ={"WORKBENCH_RUN_ID": "run-7"},
        )
    # Another run's task (an approver pipeline, say) is not the same run.
    other = approvals.decide(
        registry, "churn", "1", approve=True, environ={"WORKBENCH_RUN_ID": "run-8"}
    )
    assert other.state == "approved"


def test_rejection_needs_a_reason_and_removes_aliases(registry) -> None:  # type: ignore[no-untyped-def]
    approvals.request(registry, "churn", "1", timeout_s=60, promote_to="production")
    with pytest.raises(approvals.ApprovalError, match="a rejection needs a reason"):
        approvals.decide(registry, "churn", "1", approve=False, environ={})
    done = approvals.decide(
        registry, "churn", "1", approve=False, comment="drift", by="bob", environ={}
    )
    assert (done.state, done.comment) == ("rejected", "drift")
    assert registry.get_version("churn", "1").aliases == ()


def test_decisions_are_final_and_need_a_request(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        approvals.ApprovalError, match="churn version 2 is not waiting for approval"
    ):
        approvals.decide(registry, "churn", "2", approve=True, environ={})
    approvals.request(registry, "churn", "2", timeout_s=60)
    approvals.decide(registry, "churn", "2", approve=True, by="alice", environ={})
    with pytest.raises(approvals.ApprovalError, match=r"already approved by alice at "):
        approvals.decide(registry, "churn", "2", approve=False, comment="late", environ={})
    from workbench_dsl.errors import UsageError

    with pytest.raises(UsageError, match="no model version churn 9"):
        approvals.decide(registry, "churn", "9", approve=True, environ={})


def test_an_overdue_request_cannot_be_decided(registry) -> None:  # type: ignore[no-untyped-def]
    approvals.request(registry, "churn", "1", timeout_s=0.05)
    time.sleep(0.1)
    assert approvals.pending(registry)[0].to_json()["state"] == "expired"
    with pytest.raises(approvals.ApprovalError, match="the approval of churn version 1 expired at"):
        approvals.decide(registry, "churn", "1", approve=True, environ={})
    assert approvals.wait(registry, "churn", "1", poll_s=0.01).state == "expired"
