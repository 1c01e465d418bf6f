"""``workbench runs logs`` streams a log of any size; every command stops quietly when its reader does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TINY = """
from kfp import dsl

@dsl.component
def hello() -> str:
    print("hello from the task")
    return "hello"

@dsl.pipeline(name="tiny")
def tiny():
    hello()
"""


def _workbench(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "WORKBENCH_HOME": str(home)},
        cwd=home,
        timeout=120,
        check=False,
    )


@pytest.fixture
def a_run(workbench_home: Path) -> str:
    path = workbench_home / "tiny.py"
    path.write_text(textwrap.dedent(TINY), encoding="utf-8")
    done = _workbench(workbench_home, "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["run_id"])


def _peak_rss_kib(cmd: list[str], home: Path) -> int:
    """The peak resident memory of ``cmd`` (its stdout to /dev/null), by the kernel's count."""
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", code, *cmd], capture_output=True, text=True, env=env, check=True
    )
    return int(out.stdout.strip())


def test_runs_logs_streams_a_large_log_in_bounded_memory(a_run: str, workbench_home: Path) -> None:
    logs = [p for p in (workbench_home / "runs").rglob("logs/*.log") if p.is_file()]
    assert logs, "the run wrote no log"
    cmd = [sys.executable, "-m", "workbench_dsl", "runs", "logs", a_run]
    small = _peak_rss_kib(cmd, workbench_home)
    line = b"x" * 1023 + b"\n"
    with open(logs[0], "ab") as f:  # 150 MB more, as a task writes it: many lines
        for _ in range(150):
            f.write(line * 1024)
    big = _peak_rss_kib(cmd, workbench_home)
    # Reading it whole would cost at least 150 MB (bytes) plus as much again (text).
    assert big - small < 40 * 1024, f"peak RSS grew {(big - small) / 1024:.0f} MiB"
    tail = _workbench(workbench_home, "runs", "logs", a_run)
    assert tail.returncode == 0
    assert "hello from the task" in tail.stdout
    assert tail.stdout.count("x" * 1023) == 150 * 1024


def test_a_closed_pipe_ends_a_command_quietly(a_run: str, workbench_home: Path) -> None:
    shell = f'"{sys.executable}" -m workbench_dsl runs logs {a_run} | head -c 1; '
    shell += f'"{sys.executable}" -m workbench_dsl runs list | head -1'
    logs = next(p for p in (workbench_home / "runs").rglob("logs/*.log") if p.is_file())
    with open(logs, "ab") as f:
        f.write(b"y" * 1023 + b"\n" * 4096)  # more than a pipe holds
    done = subprocess.run(
        ["bash", "-c", shell],
        capture_output=True,
        text=True,
        env={**os.environ, "WORKBENCH_HOME": str(workbench_home)},
        timeout=120,
        check=False,
    )
    assert "BrokenPipe" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr


def test_logs_that_were_deleted_are_said_to_be_gone(workbench_home: Path, a_run: str) -> None:
    from workbench_dsl.engine.store import RunStore

    shown = _workbench(workbench_home, "runs", "logs", a_run)
    assert "hello from the task" in shown.stdout
    store = RunStore(workbench_home / "runs.db")
    (log,) = [Path(a["log_path"]) for a in store.attempts(a_run) if a["log_path"]]
    store.close()
    log.unlink()
    gone = _workbench(workbench_home, "runs", "logs", a_run)
    assert gone.returncode == 0 and gone.stdout == ""
    assert (
        gone.stderr
        == f"(no logs: 1 log file(s) of this run are gone, e.g. {log}; they were deleted from the local root)\n"
    )


def test_runs_show_says_where_its_task_pages_end(workbench_home: Path, a_run: str) -> None:
    past = _workbench(workbench_home, "runs", "show", a_run, "--offset", "5")
    assert past.returncode == 0
    assert past.stdout.splitlines()[-1] == (
        "no tasks from --offset 5: the run has 1 (1 succeeded); give a smaller --offset, or --all"
    )
    last = _workbench(workbench_home, "runs", "show", a_run, "--offset", "0", "--limit", "1")
    assert "tasks 1-1" not in last.stdout  # one page holds them all: no paging line
