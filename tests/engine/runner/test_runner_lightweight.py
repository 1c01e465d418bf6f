"""Lightweight Python components through the task runner: outputs, errors, isolation, kills."""

import os
import signal
import time
import warnings
from pathlib import Path
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output, OutputPath
from runner_helpers import make_spec, pid_alive

from workbench_dsl.engine.runner import TaskRunner
from workbench_dsl.paths import LocalRoot

# Components here are written as users write them (no `from __future__ import
# annotations`: KFP reads the annotations at decoration time).
warnings.filterwarnings("ignore", message="The default base_image")


@dsl.component
def add(a: int, b: float, name: str, flag: bool, items: list, cfg: dict) -> float:
    print(f"hello {name} {flag} {items} {cfg}")
    return a + b


def test_parameters_round_trip(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(
        add,
        tmp_path,
        params={"a": 2, "b": 0.5, "name": "ann", "flag": True, "items": [1, "x"], "cfg": {"k": 1}},
    )
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"] == {"Output": 2.5}
    assert outcome.exit_code == 0
    assert outcome.notices == []
    assert "hello ann True [1, 'x'] {'k': 1}" in spec.log_path.read_text()


@dsl.component
def train(data: Input[Dataset], rate: float, model: Output[Model], notes: OutputPath(str)) -> int:
    with open(data.path) as f:
        text = f.read()
    with open(model.path, "w") as f:
        f.write(text.upper())
    model.metadata["rate"] = rate
    model.metadata["source"] = data.metadata["source"]
    with open(notes, "w") as f:
        f.write("raw notes")
    return len(text)


def test_artifacts_round_trip(runner: TaskRunner, tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("abc")
    spec = make_spec(train, tmp_path, params={"rate": 0.1}, artifacts={"data": data})
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    out = outcome.executor_output
    assert out["parameterValues"] == {"Output": 3, "notes": "raw notes"}
    (model,) = out["artifacts"]["model"]["artifacts"]
    assert model["metadata"] == {"rate": 0.1, "source": "test"}
    assert Path(model["uri"]).read_text() == "ABC"
    assert Path(model["uri"]).is_relative_to(spec.workdir)


@dsl.component
def stats(xs: list) -> NamedTuple("Outputs", [("total", int), ("mean", float), ("label", str)]):
    out = NamedTuple("Outputs", [("total", int), ("mean", float), ("label", str)])  # noqa: UP014
    return out(sum(xs), sum(xs) / len(xs), "ok")


def test_namedtuple_outputs(runner: TaskRunner, tmp_path: Path) -> None:
    outcome = runner.submit(make_spec(stats, tmp_path, params={"xs": [1, 2, 3]})).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"] == {"total": 6, "mean": 2.0, "label": "ok"}


@dsl.component
def fail(x: int) -> int:
    y = x * 2
    raise ValueError(f"bad value {y}\nsecond line")


def test_exception_is_one_line_with_file_and_line(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(fail, tmp_path, params={"x": 21})
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "FAILED"
    assert outcome.exit_code == 1
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error.startswith("ValueError: bad value 42 (ephemeral_component.py:")
    assert outcome.error.endswith(", in fail)")
    log = spec.log_path.read_text()
    assert "Traceback (most recent call last)" in log
    assert 'raise ValueError(f"bad value {y}\\nsecond line")' in log
    assert "[workbench] FAILED: ValueError: bad value 42" in log


@dsl.component
def hard_exit(code: int):
    import os

    print("leaving", flush=True)
    os._exit(code)


def test_os_exit(runner: TaskRunner, tmp_path: Path) -> None:
    outcome = runner.submit(make_spec(hard_exit, tmp_path, params={"code": 3})).result(timeout=60)
    assert (outcome.status, outcome.exit_code, outcome.error) == ("FAILED", 3, "exited with code 3")


def test_os_exit_zero_without_outputs_succeeds_like_a_pod(
    runner: TaskRunner, tmp_path: Path
) -> None:
    outcome = runner.submit(make_spec(hard_exit, tmp_path, params={"code": 0})).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error


@dsl.component
def crash():
    import ctypes

    ctypes.string_at(0)


def test_segfault_is_contained(runner: TaskRunner, tmp_path: Path) -> None:
    outcome = runner.submit(make_spec(crash, tmp_path, task="crash")).result(timeout=60)
    assert outcome.status == "FAILED"
    assert outcome.error == "killed by SIGSEGV (segmentation fault)"
    again = runner.submit(make_spec(add, tmp_path, params=_ADD, task="after")).result(timeout=60)
    assert again.status == "SUCCEEDED", again.error


_ADD = {"a": 1, "b": 1.0, "name": "n", "flag": False, "items": [], "cfg": {}}


@dsl.component
def kill_own_group():
    import os
    import signal

    os.killpg(0, signal.SIGKILL)


@dsl.component
def kill_worker() -> str:
    import os
    import signal

    os.kill(os.getppid(), signal.SIGKILL)
    return "survived"


def test_a_task_cannot_take_the_worker_down(tmp_path: Path) -> None:
    with TaskRunner(_root(tmp_path)) as runner:
        killed = runner.submit(make_spec(kill_own_group, tmp_path, task="g")).result(timeout=60)
        assert killed.status == "FAILED"
        assert killed.error is not None and killed.error.startswith("killed by SIGKILL")
        # This one kills its parent, the warm worker: the attempt itself still completes ...
        orphan = runner.submit(make_spec(kill_worker, tmp_path, task="w")).result(timeout=60)
        assert orphan.status == "SUCCEEDED", orphan.error
        assert orphan.executor_output["parameterValues"] == {"Output": "survived"}
        # ... and the next attempt gets a fresh worker, transparently.
        after = runner.submit(make_spec(add, tmp_path, params=_ADD, task="a")).result(timeout=60)
        assert after.status == "SUCCEEDED", after.error


@dsl.component
def flood(mb: int) -> int:
    import sys

    line = "x" * 1023 + "\n"
    for _ in range(mb * 1024):
        sys.stdout.write(line)
    return mb


def test_flooding_stdout_goes_to_the_log(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(flood, tmp_path, params={"mb": 20})
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert spec.log_path.stat().st_size > 20 * 1024 * 1024


@dsl.component
def sleeper(seconds: float, pidfile: str) -> str:
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "60"])
    with open(pidfile, "w") as f:
        f.write(str(child.pid))
    time.sleep(seconds)
    return "slept"


def _wait_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text():
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise AssertionError("the task never started its child")


def test_timeout_kills_the_whole_tree(runner: TaskRunner, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    spec = make_spec(
        sleeper, tmp_path, params={"seconds": 30, "pidfile": str(pidfile)}, timeout=1.5
    )
    started = time.monotonic()
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "TIMED_OUT"
    assert outcome.error == "timed out after 1.5s"
    assert time.monotonic() - started < 10
    assert not pid_alive(_wait_pid(pidfile))
    assert "[workbench] TIMED_OUT: timed out after 1.5s" in spec.log_path.read_text()


def test_cancel_one_task(runner: TaskRunner, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    slow = runner.submit(
        make_spec(sleeper, tmp_path, params={"seconds": 30, "pidfile": str(pidfile)}, task="slow")
    )
    other = runner.submit(make_spec(add, tmp_path, params=_ADD, task="other"))
    child = _wait_pid(pidfile)
    runner.cancel("slow")
    outcome = slow.result(timeout=30)
    assert (outcome.status, outcome.error) == ("CANCELLED", "cancelled")
    assert not pid_alive(child)
    assert other.result(timeout=30).status == "SUCCEEDED"


def test_close_leaves_no_orphans(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    runner = TaskRunner(_root(tmp_path))
    future = runner.submit(
        make_spec(sleeper, tmp_path, params={"seconds": 30, "pidfile": str(pidfile)})
    )
    child = _wait_pid(pidfile)
    worker = runner._worker
    assert worker is not None
    runner.close()
    assert future.result(timeout=1).status == "CANCELLED"
    assert not pid_alive(child)
    assert not pid_alive(worker.proc.pid)


@dsl.component
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_parallel_attempts_do_not_serialize(runner: TaskRunner, tmp_path: Path) -> None:
    specs = [make_spec(nap, tmp_path, params={"seconds": 1.0}, task=f"nap-{i}") for i in range(10)]
    started = time.monotonic()
    futures = [runner.submit(s) for s in specs]
    outcomes = [f.result(timeout=60) for f in futures]
    elapsed = time.monotonic() - started
    assert [o.status for o in outcomes] == ["SUCCEEDED"] * 10
    assert elapsed < 2.5, f"10 one-second naps took {elapsed:.2f}s"


@dsl.component
def where_am_i(out: OutputPath(str)):
    import os
    import sys

    with open(out, "w") as f:
        f.write(
            "|".join(
                [
                    os.getcwd(),
                    os.environ["WORKBENCH_TASK"],
                    os.environ["MY_SETTING"],
                    os.environ.get("_KFP_RUNTIME", "unset"),
                    sys.executable,
                ]
            )
        )


def test_env_and_cwd(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(where_am_i, tmp_path, task="loop[2]/where", env={"MY_SETTING": "on"})
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    cwd, task, setting, runtime, exe = outcome.executor_output["parameterValues"]["out"].split("|")
    # kfp's runtime switch is the warm worker's (it imported kfp so): a task's own
    # subprocesses (a `workbench run`) need kfp whole.
    assert (cwd, task, setting, runtime) == (str(spec.workdir), "loop[2]/where", "on", "unset")
    assert Path(exe).resolve() == Path(os.sys.executable).resolve()
    assert "MY_SETTING" not in os.environ  # the engine's own environment is untouched


@dsl.component
def echo_names(job: str, task: str, job_id: str, task_id: str, msg: str) -> str:
    return "|".join([job, task, job_id, task_id, msg])


def test_placeholders_in_parameter_values(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(
        echo_names,
        tmp_path,
        task="for-loop-2[1]/echo-names",
        params={
            "job": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            "task": dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
            "job_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            "task_id": dsl.PIPELINE_TASK_ID_PLACEHOLDER,
            "msg": "hi {{$.inputs.parameters['task']}}!",
        },
    )
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    job, task, job_id, task_id, msg = outcome.executor_output["parameterValues"]["Output"].split(
        "|"
    )
    assert (job, task) == ("runner-test-run-1", "echo-names")
    assert len(job_id) == 36 and len(task_id) == 36 and job_id != task_id
    assert msg == "hi echo-names!"


def _root(tmp_path: Path) -> LocalRoot:
    return LocalRoot(tmp_path / "root")


@dsl.container_component
def shell_echo(msg: str, out: OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", 'echo "$0" > "$1"'], args=[msg, out]
    )


def test_many_concurrent_attempts(runner: TaskRunner, tmp_path: Path) -> None:
    specs = []
    for i in range(24):
        if i % 3 == 0:
            specs.append(make_spec(shell_echo, tmp_path, params={"msg": f"m{i}"}, task=f"sh-{i}"))
        else:
            specs.append(make_spec(nap, tmp_path, params={"seconds": 0.2}, task=f"py-{i}"))
    outcomes = [f.result(timeout=120) for f in [runner.submit(s) for s in specs]]
    assert [o.status for o in outcomes] == ["SUCCEEDED"] * 24, [o.error for o in outcomes]
    assert outcomes[3].executor_output["parameterValues"] == {"out": "m3\n"}
    assert outcomes[1].executor_output["parameterValues"] == {"Output": 0.2}


@dsl.component
def hog(mb: int) -> int:
    kept = [bytearray(1024 * 1024) for _ in range(mb)]  # never freed by the task
    return len(kept)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


def test_a_leaking_task_leaves_the_worker_as_it_was(runner: TaskRunner, tmp_path: Path) -> None:
    runner.warmup()
    worker = runner._worker
    assert worker is not None
    before = _rss_kb(worker.proc.pid)
    outcome = runner.submit(make_spec(hog, tmp_path, params={"mb": 200})).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"] == {"Output": 200}
    assert _rss_kb(worker.proc.pid) < before + 10 * 1024
