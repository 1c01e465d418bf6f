"""The approval gate against a real MLflow registry and a real engine channel in this process.

This test process plays the engine (it holds the channel); a process it starts is
a process of "the run" and must be refused, whatever its environment says. The one
test about processes outside the run hosts the channel in a fresh process instead.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry
from workbench_dsl.engine.approval_channel import ApprovalChannel
from workbench_dsl.paths import LocalRoot


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
    tags = {"workbench.run_id": "run-7", "workbench.pipeline": "churn", "workbench.step": "ev"}
    for _ in range(2):
        reg.register(name="churn", model=model, flavor="sklearn", run_id=run, tags=tags)
    reg.set_alias("churn", "staging", "1")
    return reg


@pytest.fixture
def engine(workbench_home: Path, registry: Any):  # type: ignore[no-untyped-def]
    channel = ApprovalChannel(LocalRoot(workbench_home), "run-7", "churn").open()
    yield channel
    channel.close("SUCCEEDED")


def _hold(channel: ApprovalChannel, version: str = "1", timeout_s: float = 60) -> None:
    channel.request(
        "churn", version, promote_to="production", timeout_s=timeout_s, tracking_uri=None, step="ev"
    )


def _cli(*args: str, **popen: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **popen,
    )


def test_a_person_approves_the_os_user_is_recorded_and_by_is_a_claim(registry, engine) -> None:  # type: ignore[no-untyped-def]
    _hold(engine)
    listed = approvals.pending(registry)
    assert [(a.version, a.state, a.run_id) for a in listed] == [("1", "pending", "run-7")]
    assert listed[0].to_json()["command"] == "workbench approve churn 1"
    assert approvals.get(registry, "churn", "1").state == "pending"  # the record

    done = approvals.decide(registry, "churn", "1", approve=True, by="alice", comment="ok")
    me = getpass.getuser()
    assert (done.state, done.by, done.claimed_by) == ("approved", me, "alice")
    assert done.who == f"{me} (claimed: alice)"
    record = registry.get_version("churn", "1")
    assert record.tags[approvals.TAG_BY] == me
    assert record.tags[approvals.TAG_CLAIMED_BY] == "alice"
    assert record.tags[approvals.TAG_AT].endswith("+00:00")
    assert registry.resolve("models:/churn@production").version == "1"
    assert approvals.pending(registry) == []


def test_a_process_of_the_run_is_refused_whatever_its_environment(
    registry, engine, workbench_home: Path
) -> None:  # type: ignore[no-untyped-def]
    _hold(engine)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(workbench_home)  # no run id at all: it looks like a person
    child = _cli("approve", "churn", "1", env=env)
    assert child.returncode == 2, child.stderr
    assert "a pipeline cannot approve its own step: the decision came from process" in child.stderr
    assert "a process of run run-7" in child.stderr
    reject = _cli("reject", "churn", "1", "-m", "nope", env=env)
    assert reject.returncode == 2 and "cannot reject its own step" in reject.stderr
    assert approvals.pending(registry)[0].state == "pending"
    assert "production" not in registry.get_version("churn", "1").aliases


def test_concurrent_approve_and_reject_one_wins_the_other_says_what_happened(
    registry, engine
) -> None:  # type: ignore[no-untyped-def]
    _hold(engine)
    results: dict[str, Any] = {}
    start = threading.Barrier(2)

    def decide(name: str, approve: bool) -> None:
        start.wait()
        try:
            results[name] = approvals.decide(
                registry, "churn", "1", approve=approve, comment="drift"
            ).state
        except approvals.ApprovalError as e:
            results[name] = str(e)

    threads = [
        threading.Thread(target=decide, args=("approve", True)),
        threading.Thread(target=decide, args=("reject", False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [k for k, v in results.items() if v in ("approved", "rejected")]
    assert len(won) == 1, results
    lost = "reject" if won == ["approve"] else "approve"
    assert results[lost].startswith(f"churn version 1 was already {results[won[0]]} by ")
    record = approvals.get(registry, "churn", "1")
    assert record.state == results[won[0]]
    assert ("production" in registry.get_version("churn", "1").aliases) == (won == ["approve"])


def test_rules_a_reason_to_reject_final_decisions_and_unknown_versions(registry, engine) -> None:  # type: ignore[no-untyped-def]
    _hold(engine)
    with pytest.raises(approvals.ApprovalError, match="a rejection needs a reason"):
        approvals.decide(registry, "churn", "1", approve=False)
    done = approvals.decide(registry, "churn", "1", approve=False, comment="drift")
    assert (done.state, done.comment) == ("rejected", "drift")
    assert registry.get_version("churn", "1").aliases == ()
    with pytest.raises(approvals.ApprovalError, match="was already rejected by"):
        approvals.decide(registry, "churn", "1", approve=True)
    with pytest.raises(approvals.ApprovalError, match="churn version 2 is not waiting"):
        approvals.decide(registry, "churn", "2", approve=True)
    from workbench_dsl.errors import UsageError

    with pytest.raises(UsageError, match="no model version churn 9"):
        approvals.decide(registry, "churn", "9", approve=True)


def test_an_overdue_wait_expires_and_cannot_be_decided(registry, engine) -> None:  # type: ignore[no-untyped-def]
    _hold(engine, timeout_s=0.05)
    time.sleep(0.1)
    with pytest.raises(approvals.ApprovalError, match=r"was already expired \(no decision before"):
        approvals.decide(registry, "churn", "1", approve=True)
    record = approvals.get(registry, "churn", "1")
    assert record.state == "expired"
    assert registry.get_version("churn", "1").tags[approvals.TAG_EXPIRED_BECAUSE] == "timeout"


@pytest.mark.parametrize("timeout_s", [float("nan"), float("inf"), 0.0, -5.0])
def test_a_wait_that_would_never_expire_is_refused(
    registry, engine, workbench_home: Path, timeout_s: float
) -> None:  # type: ignore[no-untyped-def]
    from workbench_dsl.backends.approvals import channel

    request = {"model": "churn", "version": "2", "timeout_s": timeout_s}
    with pytest.raises(channel.ChannelError, match="timeout_s must be a positive, finite number"):
        channel.wait(workbench_home, "run-7", request)
    assert channel.claims(workbench_home) == []


def test_tags_a_task_writes_are_a_record_never_a_trigger(registry, engine) -> None:  # type: ignore[no-untyped-def]
    _hold(engine)
    registry.set_tags("churn", "1", {approvals.TAG_STATE: "approved", approvals.TAG_BY: "mallory"})
    registry.set_tags("churn", "1", {approvals.TAG_RUN_ID: "someone-else"})
    # The engine still holds it pending, and a person's decision overwrites the forgery.
    assert [a.state for a in approvals.pending(registry)] == ["pending"]
    assert engine.claims()[0]["state"] == "pending"
    done = approvals.decide(registry, "churn", "1", approve=False, comment="forged")
    assert done.state == "rejected"
    assert approvals.get(registry, "churn", "1").by == getpass.getuser()


def test_a_run_that_ends_expires_what_it_waited_on(registry, workbench_home: Path) -> None:  # type: ignore[no-untyped-def]
    channel = ApprovalChannel(LocalRoot(workbench_home), "run-7", "churn").open()
    _hold(channel)
    channel.close("CANCELLED")
    record = approvals.get(registry, "churn", "1")
    assert record.state == "expired" and record.comment == (
        "run run-7 ended (cancelled) before a decision"
    )
    with pytest.raises(approvals.ApprovalError, match="was already expired"):
        approvals.decide(registry, "churn", "1", approve=True)
    assert "production" not in registry.get_version("churn", "1").aliases


def test_a_version_no_live_run_waits_on_is_refused_and_expired(registry) -> None:  # type: ignore[no-untyped-def]
    # What a killed engine leaves: a pending record and no socket.
    approvals.record_request(registry, "churn", "1", timeout_s=60, run_id="run-7")
    assert approvals.pending(registry)[0].to_json()["state"] == "expired"
    with pytest.raises(
        approvals.ApprovalError,
        match=r"no live run waits on churn version 1: run run-7 is not running .* now expired",
    ):
        approvals.decide(registry, "churn", "1", approve=True)
    assert approvals.get(registry, "churn", "1").state == "expired"
    assert "production" not in registry.get_version("churn", "1").aliases


def test_two_runs_claiming_one_version_need_run(registry, engine, workbench_home: Path) -> None:  # type: ignore[no-untyped-def]
    _hold(engine)
    other = ApprovalChannel(LocalRoot(workbench_home), "run-8", "churn").open()
    try:
        _hold(other)
        with pytest.raises(approvals.ApprovalError, match="waited on by runs run-7, run-8; pass"):
            approvals.decide(registry, "churn", "1", approve=True)
        done = approvals.decide(registry, "churn", "1", approve=True, run="run-8")
        assert (done.state, done.run_id) == ("approved", "run-8")
    finally:
        other.close("SUCCEEDED")


def test_only_a_task_of_the_run_may_ask_it_to_wait(registry, workbench_home: Path) -> None:  # type: ignore[no-untyped-def]
    from workbench_dsl.backends.approvals import channel

    # A process outside the run (not a descendant of the engine) cannot add claims. The
    # engine is a fresh process here: this test process may be a subreaper (an earlier
    # engine in it made it one), and an orphan would then be re-parented to it.
    engine = subprocess.Popen(
        [sys.executable, "-c", _ENGINE, str(workbench_home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert engine.stdout is not None and engine.stdout.readline() == "ready\n"
        script = (
            "import os, sys; from pathlib import Path\n"
            "from workbench_dsl.backends.approvals import channel\n"
            "if os.fork():\n    os._exit(0)\n"
            "os.setsid()\n"
            "try:\n"
            "    channel.wait(Path(sys.argv[1]), 'run-7', {'model': 'churn', 'version': '2',"
            " 'timeout_s': 5})\n"
            "except Exception as e:\n"
            "    Path(sys.argv[2]).write_text(str(e))\n"
        )
        out = workbench_home / "out.txt"
        with open(workbench_home / "err.txt", "wb") as err:
            subprocess.run(
                [sys.executable, "-c", script, str(workbench_home), str(out)],
                check=True,
                stderr=err,
            )
        deadline = time.monotonic() + 180
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists(), (workbench_home / "err.txt").read_text()
        assert out.read_text() == "only a task of run run-7 may ask it to wait for a decision"
        assert channel.claims(workbench_home) == []
    finally:
        engine.communicate("", timeout=60)


# The engine's side of the channel, alone in its process, until its stdin closes.
_ENGINE = (
    "import sys; from pathlib import Path\n"
    "from workbench_dsl.engine.approval_channel import ApprovalChannel\n"
    "from workbench_dsl.paths import LocalRoot\n"
    "ch = ApprovalChannel(LocalRoot(Path(sys.argv[1])), 'run-7', 'churn').open()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
    "ch.close('SUCCEEDED')\n"
)
