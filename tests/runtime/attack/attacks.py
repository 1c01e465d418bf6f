"""Run inside a task of the run that waits on churn version 1: try to approve it, every way.

Writes ``{attack: outcome}`` to the report file given as the first argument.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry

HERE = Path(__file__).resolve().parent
report = Path(sys.argv[1])
registry = open_registry()
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        if approvals.get(registry, "churn", "1").state == "pending":
            break
    except Exception:  # not registered yet
        pass
    time.sleep(0.2)

results: dict[str, str] = {}


def attempt(name, fn):  # type: ignore[no-untyped-def]
    try:
        results[name] = f"NOT REFUSED: {fn()!r}"
    except Exception as e:
        results[name] = f"refused: {e}"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "_KFP"))}
    env["WORKBENCH_HOME"] = os.environ["WORKBENCH_HOME"]
    return env


def cli(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        raise AssertionError(proc.stdout)  # reported as "refused: " would be wrong; see below
    return f"exit {proc.returncode}: {proc.stderr.strip()}"


def cli_attempt(name, *args):  # type: ignore[no-untyped-def]
    try:
        results[name] = "refused: " + cli(*args)
    except AssertionError as e:
        results[name] = f"NOT REFUSED: {e}"


# 1-2. The Python API with the run id unset, then changed.
run_id = os.environ.pop("WORKBENCH_RUN_ID")
attempt("api-without-run-id", lambda: approvals.decide(registry, "churn", "1", approve=True))
os.environ["WORKBENCH_RUN_ID"] = "someone-else"
attempt(
    "api-with-another-run-id",
    lambda: approvals.decide(registry, "churn", "1", approve=True, by="a person"),
)
os.environ["WORKBENCH_RUN_ID"] = run_id
# 3. The CLI from inside the task, with a clean environment.
cli_attempt("cli", "approve", "churn", "1", "--by", "a person")
# 4. The CLI from a double-forked grandchild in its own session (re-parented).
out = report.with_suffix(".grandchild")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench_dsl", "approve", "churn", "1"],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        out.write_text(f"exit {proc.returncode}: {proc.stderr.strip()} {proc.stdout.strip()}")
    os._exit(0)
os.wait()
while not out.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
text = out.read_text()
results["setsid-grandchild"] = (
    "refused: " if not text.startswith("exit 0") else "NOT REFUSED: "
) + text
# 5. Writing the approval tags, and rewriting the version's run tags, directly.
registry.set_tags(
    "churn",
    "1",
    {
        approvals.TAG_STATE: "approved",
        approvals.TAG_BY: "mallory",
        approvals.TAG_RUN_ID: "not-this-run",
        approvals.TAG_WAITING_RUN: "not-this-run",
    },
)
time.sleep(1.5)  # a step that polled the tags would have promoted by now
results["forged-tags"] = (
    "NOT REFUSED: production set"
    if "production" in registry.get_version("churn", "1").aliases
    else "refused: the engine ignores tags"
)
cli_attempt("cli-after-forged-run-tag", "approve", "churn", "1")
# 6. A nested run, whose own task approves.
nested = report.with_suffix(".nested")
proc = subprocess.run(
    [
        sys.executable,
        "-m",
        "workbench_dsl",
        "run",
        str(HERE / "nested.py"),
        "-p",
        f"report={nested}",
    ],
    env=clean_env(),
    capture_output=True,
    text=True,
    check=False,
)
results["nested-run"] = (
    nested.read_text() if nested.exists() else f"NOT REFUSED? no answer: {proc.stderr[-500:]}"
)
report.write_text(json.dumps(results, indent=1))
