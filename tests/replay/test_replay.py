"""`workbench runs replay`: one task again with its recorded inputs, outputs to scratch, under pdb."""

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from kfp import compiler
from replay_helpers import counts, read_until, replayable, wb

pytestmark = pytest.mark.slow


@pytest.fixture
def compiled(tmp_path: Path) -> Path:
    path = tmp_path / "replayable.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(replayable, str(path))
    return path


def _run(home: Path, compiled: Path, *params: str) -> dict[str, Any]:
    args = [a for p in params for a in ("-p", p)]
    r = wb(home, "run", str(compiled), *args, "--json")
    return dict(json.loads(r.stdout))


def test_replay_uses_the_recorded_inputs_and_writes_only_to_scratch(
    workbench_home: Path, compiled: Path
) -> None:
    run = _run(workbench_home, compiled, "rows=4", "denominator=2")
    assert run["status"] == "SUCCEEDED"
    before = counts(workbench_home)

    r = wb(workbench_home, "runs", "replay", run["run_id"], "divide", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["parameters"] == {"Output": 5.0}  # (1+2+3+4) / 2, from the stored table
    scratch = Path(out["scratch"])
    assert f"scratch: {scratch}" in r.stderr
    (result,) = out["artifacts"]["result"]
    assert Path(result).read_text() == "5.0" and Path(result).is_relative_to(scratch)

    r = wb(workbench_home, "runs", "replay", run["run_id"][:5], "divide", "-p", "denominator=5")
    assert r.returncode == 0, r.stderr
    assert "denominator = 5.0 (overridden)" in r.stderr and "Output = 2.0" in r.stderr

    r = wb(workbench_home, "runs", "replay", run["run_id"], "shout", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["parameters"] == {"said": "hey!"}

    assert counts(workbench_home) == before  # nothing reached the run store or the cache

    for args, message in [
        (("nope",), "has no task 'nope'"),
        (("divide", "-p", "bogus=1"), "no parameter 'bogus'"),
        (("divide", "-p", "denominator=abc"), "-p denominator"),
    ]:
        r = wb(workbench_home, "runs", "replay", run["run_id"], *args)
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_an_input_whose_digest_changed_is_refused(workbench_home: Path, compiled: Path) -> None:
    run = _run(workbench_home, compiled)
    c = sqlite3.connect(workbench_home / "runs.db")
    (inputs,) = c.execute(
        "SELECT inputs_json FROM tasks WHERE run_id=? AND task='divide'", (run["run_id"],)
    ).fetchone()
    c.close()
    path = Path(json.loads(inputs)["artifacts"]["table"][0]["uri"])
    os.chmod(path, 0o600)
    path.write_text("100\n")
    r = wb(workbench_home, "runs", "replay", run["run_id"], "divide")
    assert r.returncode == 2 and "no longer has the digest" in r.stderr


def test_pdb_stops_in_the_tasks_own_code_driven_from_a_terminal(
    workbench_home: Path, compiled: Path
) -> None:
    run = _run(workbench_home, compiled, "denominator=0")
    assert run["status"] == "FAILED"
    pid, fd = pty.fork()
    if pid == 0:  # the child: workbench in a terminal, as a person runs it
        os.environ.update(WORKBENCH_HOME=str(workbench_home), TMPDIR=str(workbench_home))
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "workbench_dsl",
                "runs",
                "replay",
                run["run_id"],
                "divide",
                "--pdb",
            ],
        )
    seen: list[str] = []
    deadline = time.time() + 90
    try:
        read_until(fd, "(Pdb)", deadline, seen)
        text = "".join(seen)
        assert "ZeroDivisionError" in text and "ratio = total / denominator" in text
        os.write(fd, b"p total, denominator\n")
        read_until(fd, "(10.0, 0)", deadline, seen)  # a whole double arrives as protojson wrote it
        os.write(fd, b"q\n")
        read_until(fd, "replay failed", deadline, seen)
    finally:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 1
