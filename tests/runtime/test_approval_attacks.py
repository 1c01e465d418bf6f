"""The approval gate tried as an attacker inside the run would, through the real engine.

`workbench run` (a subprocess: the engine) runs a pipeline whose own task tries
every way to approve the version its run waits on (tests/runtime/attack/); none
may approve or promote it. Then a person, outside the run, approves it. A second
test cancels, kills and resumes a waiting run.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry

HERE = Path(__file__).resolve().parent / "attack"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(home)
    return env


def _wb(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        env=_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench_dsl", *args, "--json"],
        env=_env(home),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _waiting(home: Path, engine: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    """The one pending approval, as `workbench approvals list --json` shows it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert engine.poll() is None, engine.communicate()[1][-3000:]
        if (home / "mlflow.db").exists():
            listed = json.loads(_wb(home, "approvals", "list", "--json").stdout or "[]")
            pending = [a for a in listed if a["state"] == "pending"]
            if pending:
                (one,) = pending
                return dict(one)
        time.sleep(0.5)
    raise AssertionError("the register step never asked for approval")


def test_nothing_inside_the_run_can_approve_it_and_a_person_can(
    workbench_home: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    engine = _start(
        workbench_home,
        "run",
        str(HERE / "self_approval.py"),
        "-p",
        f"script={HERE / 'attacks.py'}",
        "-p",
        f"report={report}",
    )
    try:
        waiting = _waiting(workbench_home, engine)
        assert (waiting["model"], waiting["version"]) == ("churn", "1")
        deadline = time.monotonic() + 300
        while not report.exists() and time.monotonic() < deadline:
            assert engine.poll() is None, engine.communicate()[1][-3000:]
            time.sleep(0.5)
        results = json.loads(report.read_text())
        assert set(results) == {
            "api-without-run-id",
            "api-with-another-run-id",
            "cli",
            "setsid-grandchild",
            "forged-tags",
            "cli-after-forged-run-tag",
            "nested-run",
        }
        for name, outcome in results.items():
            assert outcome.startswith("refused: "), f"{name}: {outcome}"
            if name != "forged-tags":
                assert "a pipeline cannot approve its own step" in outcome, f"{name}: {outcome}"
                assert f"a process of run {waiting['run_id']}" in outcome, f"{name}: {outcome}"
        registry = open_registry()
        assert "production" not in registry.get_version("churn", "1").aliases
        # The engine still waits, whatever the tags now say.
        assert _waiting(workbench_home, engine)["version"] == "1"

        person = _wb(workbench_home, "approve", "churn", "1", "--by", "a person", "-m", "ok")
        assert person.returncode == 0, person.stderr
        out, err = engine.communicate(timeout=180)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 0, err[-3000:]
    assert json.loads(out)["status"] == "SUCCEEDED"
    record = approvals.get(registry, "churn", "1")
    assert (record.state, record.by, record.claimed_by) == (
        "approved",
        getpass.getuser(),
        "a person",
    )
    assert registry.resolve("models:/churn@production").version == "1"


def test_cancel_kill_and_resume_leave_one_version_and_no_stale_approval(
    workbench_home: Path,
) -> None:
    engine = _start(
        workbench_home, "run", str(HERE / "self_approval.py"), "-p", "script=", "-p", "report="
    )
    try:
        run_id = _waiting(workbench_home, engine)["run_id"]
        engine.send_signal(signal.SIGINT)  # Ctrl-C: the run is cancelled
        engine.communicate(timeout=120)
        registry = open_registry()
        record = approvals.get(registry, "churn", "1")
        assert record.state == "expired"
        assert record.comment == f"run {run_id} ended (cancelled) before a decision"
        late = _wb(workbench_home, "approve", "churn", "1")
        assert late.returncode == 2 and "churn version 1 was already expired" in late.stderr

        engine = _start(workbench_home, "runs", "resume", run_id)
        assert _waiting(workbench_home, engine)["version"] == "1"  # the same version, again
        engine.kill()  # the engine dies without a word: its socket goes with it
        engine.communicate(timeout=60)
        gone = _wb(workbench_home, "approve", "churn", "1")
        assert gone.returncode == 2
        assert f"no live run waits on churn version 1: run {run_id} is not running" in gone.stderr
        assert approvals.get(registry, "churn", "1").state == "expired"

        engine = _start(workbench_home, "runs", "resume", run_id)
        assert _waiting(workbench_home, engine)["version"] == "1"
        assert _wb(workbench_home, "approve", "churn", "1").returncode == 0
        _, err = engine.communicate(timeout=180)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 0, err[-3000:]
    assert [v.version for v in registry.versions("churn")] == ["1"]
    assert registry.resolve("models:/churn@production").version == "1"
