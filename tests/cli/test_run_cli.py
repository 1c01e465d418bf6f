"""`workbench run`, `workbench runs ...` and `workbench cache ...` as a user runs them (subprocesses)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from kfp import compiler, dsl

pytestmark = pytest.mark.slow

IMG = "python:3.11"


@dsl.component(base_image=IMG)
def step(i: int, log: str, secs: float) -> int:
    import time

    with open(log, "a") as f:
        f.write(f"{i}\n")
    time.sleep(secs)
    return i + 1


@dsl.pipeline(name="chain")
def chain(log: str, secs: float = 0.0, n: int = 0) -> int:
    t = step(i=n, log=log, secs=secs)
    for _ in range(4):
        t = step(i=t.output, log=log, secs=secs)
    return t.output


@dsl.component(base_image=IMG)
def boom(message: str) -> str:
    raise ValueError(message)


@dsl.pipeline(name="boom")
def boom_pipeline(message: str = "it broke") -> str:
    return boom(message=message).output


def compile_to(pipeline: Any, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(pipeline, str(path))
    return path


def wb(*args: str, home: Path, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, WORKBENCH_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **kw,
    )


def start(*args: str, home: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, WORKBENCH_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "workbench_dsl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_lines(path: Path, n: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


@pytest.fixture
def chain_yaml(tmp_path: Path) -> Path:
    return compile_to(chain, tmp_path / "chain.yaml")


def test_json_shape_exit_code_and_cached_rerun(
    chain_yaml: Path, workbench_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    p = wb("run", str(chain_yaml), "-p", f"log={log}", "--json", home=workbench_home)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # exactly one JSON document on stdout
    assert set(out) == {"run_id", "status", "tasks", "outputs"}
    assert out["status"] == "SUCCEEDED"
    assert out["outputs"] == {"Output": 5}
    assert len(out["tasks"]) == 5
    for t in out["tasks"]:
        assert set(t) == {"name", "status", "cached", "attempts", "duration_s"}
        assert (t["status"], t["cached"], t["attempts"]) == ("SUCCEEDED", False, 1)
    # The same run again: every task comes from the cache, nothing executes.
    p2 = wb("run", str(chain_yaml), "-p", f"log={log}", "--json", home=workbench_home)
    again = json.loads(p2.stdout)
    assert [t["cached"] for t in again["tasks"]] == [True] * 5
    assert again["outputs"] == {"Output": 5}
    assert log.read_text().splitlines() == ["0", "1", "2", "3", "4"]
    # --no-cache runs them all again.
    p3 = wb("run", str(chain_yaml), "-p", f"log={log}", "--json", "--no-cache", home=workbench_home)
    assert not any(t["cached"] for t in json.loads(p3.stdout)["tasks"])
    # runs list: newest first, each with run_id and status.
    runs = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)
    assert [r["run_id"] for r in runs[:3]] == [
        json.loads(p3.stdout)["run_id"],
        again["run_id"],
        out["run_id"],
    ]
    assert all(r["status"] == "SUCCEEDED" for r in runs)
    # cache list / clear
    cached = json.loads(wb("cache", "list", "--json", home=workbench_home).stdout)
    assert len(cached) == 5
    assert "cleared 5" in wb("cache", "clear", home=workbench_home).stdout
    assert json.loads(wb("cache", "list", "--json", home=workbench_home).stdout) == []


def test_failed_run_shows_error_and_log_exit_1(tmp_path: Path, workbench_home: Path) -> None:
    y = compile_to(boom_pipeline, tmp_path / "boom.yaml")
    p = wb("run", str(y), home=workbench_home)
    assert p.returncode == 1
    assert "ValueError: it broke" in p.stderr
    log_line = next(ln for ln in p.stderr.splitlines() if ln.strip().startswith("log: "))
    log = Path(log_line.split("log: ", 1)[1])
    assert "it broke" in log.read_text()
    run_id = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)[0]["run_id"]
    show = json.loads(wb("runs", "show", run_id[:6], "--json", home=workbench_home).stdout)
    assert show["status"] == "FAILED"
    assert show["tasks"][0]["error"].startswith("ValueError: it broke")
    assert show["tasks"][0]["log_path"] == str(log)
    logs = wb("runs", "logs", run_id[:6], "boom", home=workbench_home)
    assert "it broke" in logs.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope=1"], "unknown parameter 'nope'"),
        (["-p", "n=abc"], "parameter 'n' expects an integer, got 'abc'"),
        (["-p", "secs=fast"], "parameter 'secs' expects a number"),
        (["-p", "n"], "bad parameter 'n': write -p NAME=VALUE"),
        ([], "missing required parameter: log (a string)"),
    ],
)
def test_bad_parameters_exit_2(
    chain_yaml: Path, workbench_home: Path, args: list[str], message: str
) -> None:
    extra = [] if not args or args[1].startswith("log") else ["-p", "log=/tmp/x"]
    p = wb("run", str(chain_yaml), *extra, *args, home=workbench_home)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().startswith("error: ")
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert p.stdout == ""


def test_not_a_pipeline_and_missing_file_exit_2(tmp_path: Path, workbench_home: Path) -> None:
    p = wb("run", str(tmp_path / "nope.yaml"), home=workbench_home)
    assert p.returncode == 2 and "no such file" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: just a component\nimplementation: {}\n")
    p = wb("run", str(bad), home=workbench_home)
    assert p.returncode == 2 and "not a compiled KFP v2 pipeline" in p.stderr


def test_runs_a_kfp_module_and_lists_typed_params(tmp_path: Path, workbench_home: Path) -> None:
    mod = tmp_path / "flow.py"
    mod.write_text(
        "from kfp import dsl\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def mul(x: int, flag: bool, items: list) -> int:\n"
        "    return x * (2 if flag else 1) * len(items)\n"
        "@dsl.pipeline(name='flow')\n"
        "def flow(x: int = 3, flag: bool = False, items: list = [1]) -> int:\n"
        "    return mul(x=x, flag=flag, items=items).output\n"
    )
    p = wb(
        "run",
        f"{mod}:flow",
        "-p",
        "flag=true",
        "-p",
        "items=[1,2]",
        "--json",
        home=workbench_home,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["outputs"] == {"Output": 12}


def test_resume_after_sigkill_does_not_rerun_completed_tasks(
    chain_yaml: Path, workbench_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = start("run", str(chain_yaml), "-p", f"log={log}", "-p", "secs=0.6", home=workbench_home)
    wait_for_lines(log, 3)  # the third task is running: two have completed
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = log.read_text().splitlines()
    runs = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)
    assert runs[0]["status"] == "INTERRUPTED"
    run_id = runs[0]["run_id"]
    show = json.loads(wb("runs", "show", run_id, "--json", home=workbench_home).stdout)
    done = [t["name"] for t in show["tasks"] if t["status"] == "SUCCEEDED"]
    assert len(done) >= 2
    r = wb("runs", "resume", run_id[:8], "--json", home=workbench_home)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["status"] == "SUCCEEDED"
    assert result["outputs"] == {"Output": 5}
    lines = log.read_text().splitlines()
    # Each task that had completed ran exactly once; every step value appears.
    for i in range(len(done)):
        assert lines.count(str(i)) == 1, lines
    assert sorted(set(lines)) == ["0", "1", "2", "3", "4"]
    assert len(lines) <= len(before) + (5 - len(done))
    show = json.loads(wb("runs", "show", run_id, "--json", home=workbench_home).stdout)
    assert show["status"] == "SUCCEEDED"
    for t in show["tasks"]:
        if t["name"] in done:
            assert t["reused"] and t["attempts"] == 1


def test_ctrl_c_cancels_cleanly_and_run_can_resume(
    chain_yaml: Path, workbench_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = start(
        "run", str(chain_yaml), "-p", f"log={log}", "-p", "secs=5", "--json", home=workbench_home
    )
    wait_for_lines(log, 1)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    out, _err = proc.communicate(timeout=30)
    assert time.time() - t0 < 10  # the 5 s task was stopped, not waited for
    assert proc.returncode == 130
    result = json.loads(out)
    assert result["status"] == "CANCELLED"
    assert result["tasks"][0]["status"] == "CANCELLED"
    runs = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)
    assert runs[0]["status"] == "CANCELLED"
    # No task process survives the engine.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(log) not in ps
    r = wb("runs", "resume", result["run_id"], "--json", home=workbench_home)
    assert json.loads(r.stdout)["status"] == "SUCCEEDED"


def test_runs_cancel_stops_a_running_engine(
    chain_yaml: Path, workbench_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = start("run", str(chain_yaml), "-p", f"log={log}", "-p", "secs=5", home=workbench_home)
    wait_for_lines(log, 1)
    run_id = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)[0]["run_id"]
    c = wb("runs", "cancel", run_id, home=workbench_home)
    assert c.returncode == 0, c.stderr
    assert "CANCELLED" in c.stderr
    proc.wait(timeout=30)
    assert (
        json.loads(wb("runs", "show", run_id, "--json", home=workbench_home).stdout)["status"]
        == "CANCELLED"
    )


def test_two_concurrent_runs_share_one_store(
    chain_yaml: Path, workbench_home: Path, tmp_path: Path
) -> None:
    procs = [
        start(
            "run",
            str(chain_yaml),
            "-p",
            f"log={tmp_path / f'log{i}'}",
            "-p",
            f"n={i * 10}",
            "-p",
            "secs=0.05",
            "--json",
            home=workbench_home,
        )
        for i in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(r["outputs"]["Output"] for r in results) == [5, 15, 25]
    runs = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)
    assert len(runs) == 3 and all(r["status"] == "SUCCEEDED" for r in runs)
    db = sqlite3.connect(workbench_home / "runs.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM attempts WHERE status='SUCCEEDED'").fetchone()[0] == 15


def test_refuses_a_secret_the_task_reads_before_running(
    tmp_path: Path, workbench_home: Path
) -> None:
    from kfp import kubernetes

    @dsl.pipeline(name="secret")
    def p(log: str) -> None:
        t = step(i=0, log=log, secs=0.0)
        kubernetes.use_secret_as_env(t, secret_name="db", secret_key_to_env={"password": "PW"})

    y = compile_to(p, tmp_path / "secret.yaml")
    log = tmp_path / "log"
    r = wb("run", str(y), "-p", f"log={log}", home=workbench_home)
    assert r.returncode == 2
    # refused before anything runs, with the command that gives the run its secret
    assert "secret 'db'" in r.stderr and "workbench secrets set db password=" in r.stderr
    assert not log.exists()
    assert json.loads(wb("runs", "list", "--json", home=workbench_home).stdout) == []


def test_a_secret_named_by_an_upstream_output_is_read_when_its_task_starts(
    tmp_path: Path, workbench_home: Path
) -> None:
    from kfp import kubernetes

    @dsl.component(base_image=IMG)
    def name_of_secret() -> str:
        return "dyn"

    @dsl.pipeline(name="secret-from-output")
    def p(log: str) -> None:
        t = step(i=0, log=log, secs=0.0)
        kubernetes.use_secret_as_env(
            t, secret_name=name_of_secret().output, secret_key_to_env={"k": "K"}
        )

    y = compile_to(p, tmp_path / "secret-from-output.yaml")
    log = tmp_path / "log"
    r = wb("run", str(y), "-p", f"log={log}", "--json", home=workbench_home)
    assert r.returncode == 1, r.stderr
    assert "step: secret 'dyn' is not set here: workbench secrets set dyn k=VALUE" in r.stderr
    assert "log: None" not in r.stderr  # the task never started: it has no log
    assert not log.exists()
    wb("secrets", "set", "dyn", "k=v4lue", home=workbench_home)
    r = wb("run", str(y), "-p", f"log={log}", "--json", home=workbench_home)
    assert r.returncode == 0, r.stderr
    assert log.read_text() == "0\n"


def test_runs_logs_follow_ends_with_the_run(
    chain_yaml: Path, workbench_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = start("run", str(chain_yaml), "-p", f"log={log}", "-p", "secs=0.3", home=workbench_home)
    wait_for_lines(log, 1)
    run_id = json.loads(wb("runs", "list", "--json", home=workbench_home).stdout)[0]["run_id"]
    follow = wb("runs", "logs", run_id, "--follow", home=workbench_home, timeout=60)
    assert proc.wait(timeout=60) == 0
    assert follow.returncode == 0
    headers = [ln for ln in follow.stdout.splitlines() if ln.startswith("==> ")]
    assert [h.split()[1] for h in headers] == ["step", "step-2", "step-3", "step-4", "step-5"]
