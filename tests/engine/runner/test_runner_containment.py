"""What a task starts ends with the task or its run; its memory and its log are bounded.

Written as a task that tries to get out would: a double ``setsid``, the old
``WORKBENCH_DETACHED=1`` pass, the engine's spawner asked from outside the run
or for another root, a task over its profile's memory limit, a 50 MB flood of
output. Each process test runs twice: with a cgroup per run (where this host
lets the runner make one) and with the tree kill it falls back to.
"""

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import dsl
from runner_helpers import compile_executor, make_spec, pid_alive

from workbench_dsl import _detach
from workbench_dsl.engine.runner import TaskRunner
from workbench_dsl.paths import LocalRoot


@pytest.fixture(params=["cgroup", "tree"])
def fresh_runner(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TaskRunner]:
    if request.param == "tree":
        monkeypatch.setenv("WORKBENCH_CGROUPS", "0")
    runner = TaskRunner(LocalRoot(tmp_path / "root"))
    if request.param == "cgroup" and runner.cgroup is None:
        runner.close()
        pytest.skip("this host does not let the runner make a cgroup")
    try:
        yield runner
    finally:
        runner.close()


def _wait_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise AssertionError("the task never wrote its pid")


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


@dsl.component
def double_setsid(pidfile: str) -> str:
    import subprocess
    import sys

    # A child in its own session that starts a grandchild in yet another session and
    # exits: the grandchild is nobody's child in the attempt's tree any more.
    code = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen(['sleep', '120'], start_new_session=True)\n"
        "open(sys.argv[1], 'w').write(str(p.pid))\n"
    )
    subprocess.run([sys.executable, "-c", code, pidfile], start_new_session=True, check=True)
    return "left"


def test_a_double_setsid_grandchild_ends_with_the_run(
    fresh_runner: TaskRunner, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    spec = make_spec(double_setsid, tmp_path, params={"pidfile": str(pidfile)})
    assert fresh_runner.submit(spec).result(timeout=60).status == "SUCCEEDED"
    grandchild = _wait_pid(pidfile)
    if fresh_runner.cgroup is not None:
        assert _gone(grandchild)  # its cgroup ended with the attempt
    fresh_runner.close()
    assert _gone(grandchild)


@dsl.component
def claims_detached(pidfile: str) -> str:
    import os
    import subprocess

    env = {**os.environ, "WORKBENCH_DETACHED": "1"}
    service = subprocess.Popen(["sleep", "120"], start_new_session=True, env=env)
    with open(pidfile, "w") as f:
        f.write(str(service.pid))
    return "serving"


def test_a_task_cannot_declare_its_process_detached(
    fresh_runner: TaskRunner, tmp_path: Path
) -> None:
    pidfile = tmp_path / "service.pid"
    spec = make_spec(claims_detached, tmp_path, params={"pidfile": str(pidfile)})
    assert fresh_runner.submit(spec).result(timeout=60).status == "SUCCEEDED"
    service = _wait_pid(pidfile)
    fresh_runner.close()
    try:
        assert _gone(service)
    finally:
        if pid_alive(service):
            os.kill(service, signal.SIGKILL)


@dsl.component
def ask_spawner(home: str, name: str) -> str:
    import os

    from workbench_dsl import _detach

    try:
        _detach.ask_engine(os.environ["WORKBENCH_SPAWNER"], home, name, [])  # type: ignore[arg-type]
    except _detach.SpawnError as exc:
        return str(exc)
    return "started"


def test_the_spawner_starts_only_endpoint_servers_of_its_own_root(
    fresh_runner: TaskRunner, tmp_path: Path
) -> None:
    sock = str(fresh_runner._spawner.path)
    # Not a process of the run (this test is the engine's parent, not its task).
    with pytest.raises(_detach.SpawnError, match="only a task of this run"):
        _detach.ask_engine(sock, fresh_runner.root.root, "churn", [])
    other = make_spec(ask_spawner, tmp_path, params={"home": "/tmp", "name": "churn"}, task="a")
    out = fresh_runner.submit(other).result(timeout=60)
    assert "this run's local root is" in out.executor_output["parameterValues"]["Output"]
    home = str(fresh_runner.root.root)
    bad = make_spec(ask_spawner, tmp_path, params={"home": home, "name": "../x"}, task="b")
    out = fresh_runner.submit(bad).result(timeout=60)
    assert "is not an endpoint name" in out.executor_output["parameterValues"]["Output"]


@dsl.component
def hog(mb: int) -> int:
    block = bytearray(mb << 20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: resident, not just reserved
    return len(block)


def _limited(tmp_path: Path, limit: str) -> dict:
    executor, _ = compile_executor(hog, tmp_path)
    executor["container"]["resources"] = {"resourceMemoryLimit": limit}
    return executor


def test_a_task_over_its_memory_limit_fails_and_says_why(
    fresh_runner: TaskRunner, tmp_path: Path
) -> None:
    executor = _limited(tmp_path, "256Mi")
    over = make_spec(hog, tmp_path, params={"mb": 512}, executor=executor, task="over")
    outcome = fresh_runner.submit(over).result(timeout=120)
    assert outcome.status == "FAILED"
    assert outcome.error is not None
    assert "over its profile's memory limit of 256 MiB" in outcome.error
    # Within the limit, the same task runs: the limit is the task's, not the worker's.
    under = make_spec(hog, tmp_path, params={"mb": 64}, executor=executor, task="under")
    fine = fresh_runner.submit(under).result(timeout=120)
    assert fine.status == "SUCCEEDED", fine.error
    if fresh_runner.cgroup is None or not fresh_runner.cgroup.memory:
        assert any("RLIMIT_AS" in n for n in outcome.notices)


@dsl.component
def flood_bytes(mb: int) -> int:
    import os

    chunk = b"y" * (1 << 20)
    for _ in range(mb):
        os.write(1, chunk)
    print("the end")
    return mb


def test_a_flood_of_output_is_cut_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_LOG_MAX_BYTES", "1Mi")
    spec = make_spec(flood_bytes, tmp_path, params={"mb": 50})
    with TaskRunner(LocalRoot(tmp_path / "root")) as runner:
        started = time.monotonic()
        outcome = runner.submit(spec).result(timeout=60)
        took = time.monotonic() - started
    assert outcome.status == "SUCCEEDED", outcome.error
    size = spec.log_path.stat().st_size
    assert 1 << 20 <= size < (1 << 20) + 4096
    tail = spec.log_path.read_bytes()[-200:].decode()
    assert "[workbench] log cut at 1048576 bytes (WORKBENCH_LOG_MAX_BYTES)" in tail
    assert took < 30


def test_a_bad_log_cap_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_LOG_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="WORKBENCH_LOG_MAX_BYTES='lots' is not a size"):
        TaskRunner(LocalRoot(tmp_path / "root"))


@dsl.component
def engine_variables() -> str:
    import os

    return ",".join(
        sorted(k for k in os.environ if k in ("_KFP_RUNTIME", "WORKBENCH_WORKER_CGROUP"))
    )


def test_the_engines_own_variables_stay_out_of_tasks(
    fresh_runner: TaskRunner, tmp_path: Path
) -> None:
    outcome = fresh_runner.submit(make_spec(engine_variables, tmp_path)).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"]["Output"] == ""


@dsl.component
def deploys(storage: str, home: str) -> int:
    from pathlib import Path

    from workbench_dsl.backends.deployer import DeploySpec
    from workbench_dsl.backends.deployer.local import LocalDeployer
    from workbench_dsl.paths import LocalRoot

    deployer = LocalDeployer(LocalRoot(Path(home)))
    spec = DeploySpec(
        endpoint="churn", model_uri="models:/churn/1", storage=storage, flavor="sklearn"
    )
    deployer.deploy(spec)
    row = deployer.store.get("churn")
    assert row is not None and row.pid is not None
    return int(row.pid)


@pytest.mark.slow
def test_an_endpoint_deployed_by_a_task_outlives_the_run(
    fresh_runner: TaskRunner, tmp_path: Path
) -> None:
    import mlflow.sklearn
    from sklearn.tree import DecisionTreeClassifier

    from workbench_dsl.backends.deployer.local import LocalDeployer

    model = tmp_path / "model"
    tree = DecisionTreeClassifier().fit([[0, 0], [1, 1]], [0, 1])
    mlflow.sklearn.save_model(tree, model, serialization_format="pickle")
    home = fresh_runner.root.root
    spec = make_spec(deploys, tmp_path, params={"storage": str(model), "home": str(home)})
    outcome = fresh_runner.submit(spec).result(timeout=180)
    assert outcome.status == "SUCCEEDED", outcome.error
    server = outcome.executor_output["parameterValues"]["Output"]
    deployer = LocalDeployer(LocalRoot(home))
    try:
        fresh_runner.close()
        time.sleep(0.5)
        assert pid_alive(server)  # the engine started it, outside the run
        assert deployer.get("churn").state == "running"
    finally:
        deployer.stop_all()
