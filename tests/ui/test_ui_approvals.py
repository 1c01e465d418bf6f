"""Models and approvals over HTTP against a real MLflow registry: versions, aliases, metrics,
who decided what and when; Approve and Reject do what ``workbench approve/reject`` do."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import PORT, TOKEN, XSS, csrf_of, make_client

from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry
from workbench_dsl.engine.approval_channel import ApprovalChannel
from workbench_dsl.paths import LocalRoot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry with four versions of ``churn``, each waited on by a live run's engine
    (this process holds the engine's side, as ``workbench run`` would)."""
    home = tmp_path_factory.mktemp("registry-home")
    engine = ApprovalChannel(LocalRoot(home), "run000000009", XSS).open()
    registry = open_registry(root=LocalRoot(home))
    model = tmp_path_factory.mktemp("model")
    (model / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    for i in range(4):
        tags = {
            "workbench.run_id": f"run{i:09d}",
            "workbench.pipeline": XSS,
            "workbench.step": "evaluate",
        }
        run = registry.log_evaluation(
            experiment="churn",
            run_name=f"evaluate-{i}",
            tags=tags,
            params={},
            metrics={"accuracy": 0.9 + i / 100},
        )
        v = registry.register(
            name="churn", model=str(model), flavor="pyfunc", run_id=run, tags=tags
        )
        registry.set_alias("churn", "staging", v.version)
        engine.request(
            "churn",
            v.version,
            promote_to="production",
            timeout_s=3600,
            tracking_uri=registry.uri,
            step="evaluate",
        )
    yield home
    engine.close("SUCCEEDED")


def _client(home: Path) -> Any:
    c = make_client(home)
    c.cookies.set(f"workbench_ui_token_{PORT}", TOKEN)
    return c


def _decide(c: Any, version: str, decision: str, comment: str = "", **extra: str) -> Any:
    form = {
        "csrf": csrf_of(c),
        "model": "churn",
        "version": version,
        "decision": decision,
        "comment": comment,
        **extra,
    }
    return c.post("/approvals/decide", data=form)


def test_pages_show_versions_and_pending_approvals(registry_home: Path) -> None:
    c = _client(registry_home)
    models = c.get("/models").text
    assert 'href="/models/churn"' in models and "waiting for a decision" in models
    approvals_page = c.get("/approvals").text
    assert 'id="pending-churn-4"' in approvals_page
    assert approvals_page.count('name="decision" value="reject"') >= 1
    # Rejecting needs a reason: the browser asks before sending.
    assert (
        'placeholder="why (required to reject)" aria-label="rejection reason" required'
        in approvals_page
    )
    assert "workbench approve churn 4" in approvals_page
    model = c.get("/models/churn").text
    assert "0.93" in model and "staging" in model and "pending" in model
    assert 'href="/runs/run000000003"' in model
    for page in (models, approvals_page, model):
        assert XSS not in page
    assert c.get("/models/nope").status_code == 404


def test_approve_sets_the_alias_and_records_who(registry_home: Path) -> None:
    c = _client(registry_home)
    r = _decide(c, "1", "approve", "looks good", by="alice")
    assert r.status_code == 303
    done = c.get(r.headers["location"]).text
    me = getpass.getuser()
    assert (
        f"churn version 1 approved by {me} (claimed: alice); alias production -&gt; version 1"
        in done
    )
    registry = open_registry(root=LocalRoot(registry_home))
    state = approvals.get(registry, "churn", "1")
    assert (state.state, state.by, state.claimed_by, state.comment) == (
        "approved",
        me,
        "alice",
        "looks good",
    )
    assert registry.resolve("models:/churn@production").version == "1"
    decided = c.get("/approvals").text
    assert "alice" in decided and "looks good" in decided and 'id="pending-churn-1"' not in decided
    # A decision is final, as on the command line.
    again = _decide(c, "1", "reject", "changed my mind")
    assert f"was already approved by {me} (claimed: alice)" in c.get(again.headers["location"]).text


def test_reject_needs_a_comment_and_drops_aliases(registry_home: Path) -> None:
    c = _client(registry_home)
    r = c.post(
        "/approvals/decide",
        data={"csrf": csrf_of(c), "model": "churn", "version": "2", "decision": "reject"},
        headers={"accept": "application/json"},
    )
    assert r.status_code == 400 and "a rejection needs a reason" in r.json()["message"]
    registry = open_registry(root=LocalRoot(registry_home))
    assert approvals.get(registry, "churn", "2").state == "pending"
    r = _decide(c, "2", "reject", "worse than v1")
    assert "rejected by" in c.get(r.headers["location"]).text
    rejected = registry.get_version("churn", "2")
    assert rejected.tags["workbench.approval"] == "rejected" and rejected.aliases == ()
    model = c.get("/models/churn").text
    assert "worse than v1" in model


def test_a_bad_decision_changes_nothing(registry_home: Path) -> None:
    c = _client(registry_home)
    r = c.post(
        "/approvals/decide",
        data={"csrf": csrf_of(c), "model": "churn", "version": "3", "decision": "maybe"},
        headers={"accept": "application/json"},
    )
    assert r.status_code == 400 and "approve or reject" in r.json()["message"]
    missing = _decide(c, "99", "approve")
    assert "no model version churn 99" in c.get(missing.headers["location"]).text
    # Without the token (loopback reads are open, actions are not) nothing happens.
    anonymous = make_client(registry_home)
    assert _decide(anonymous, "3", "approve").status_code == 403
    registry = open_registry(root=LocalRoot(registry_home))
    assert approvals.get(registry, "churn", "3").state == "pending"


def test_no_registry_yet(workbench_home: Path) -> None:
    c = make_client(workbench_home)
    assert "No registered models yet" in c.get("/models").text
    assert "Nothing is waiting for approval" in c.get("/approvals").text
    assert not (workbench_home / "mlflow.db").exists()  # looking does not create one
