"""Runs of thousands of tasks: no recursion whose depth grows with the DAG, cached reruns, resume.

These used to fail with ``RecursionError`` (a cache hit finished its task
synchronously, which started its dependents, which hit the cache...). They are
fast because every task but one is a cache hit: the warm-up pipeline runs
``noop(x=7)`` once, and every task below has that same cache key (the key is
the component, its executor and its inputs, never the pipeline or task name).

The big specs are built from small ones compiled by KFP (compiling a
2,000-task chain with KFP's compiler alone takes longer than running it).
"""

import copy
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
import yaml
from kfp import compiler, dsl

from workbench_dsl.engine import execute
from workbench_dsl.engine.run_view import run_details
from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import LocalRoot
from workbench_dsl.ui.run_page import run_page


@dsl.component(base_image="python:3.11")
def noop(x: int) -> int:
    return x


@dsl.component(base_image="python:3.11")
def gate(path: str) -> int:
    import os
    import time

    while os.path.exists(path):  # held until the test removes the file
        time.sleep(0.02)
    return 7


@dsl.pipeline(name="one")
def one() -> None:
    noop(x=7)


@dsl.pipeline(name="chain")
def chain2() -> None:
    noop(x=7).after(noop(x=7))


@dsl.pipeline(name="fan")
def fan2() -> None:
    with dsl.ParallelFor([0, 1]):
        noop(x=7)


@dsl.pipeline(name="gated")
def gated(path: str = "") -> None:
    noop(x=7).after(gate(path=path).after(noop(x=7)))


def _compiled(pipeline: Any, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / f"{pipeline.name}.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(pipeline, str(path))
    return dict(yaml.safe_load(path.read_text()))


def _chain(spec: dict[str, Any], before: int, after: int = 0) -> dict[str, Any]:
    """``before`` noop steps in a chain, the spec's own middle task(s), then ``after`` more."""
    spec = copy.deepcopy(spec)
    tasks = spec["root"]["dag"]["tasks"]
    noop_task = next(t for t in tasks.values() if t["componentRef"]["name"].startswith("comp-noop"))
    middle = {
        n: t for n, t in tasks.items() if not t["componentRef"]["name"].startswith("comp-noop")
    }
    new: dict[str, Any] = {}
    prev = None
    for i in range(before):
        new[f"a{i:05d}"] = _step(noop_task, prev)
        prev = f"a{i:05d}"
    for name, t in middle.items():
        new[name] = _step(t, prev)
        prev = name
    for i in range(after):
        new[f"b{i:05d}"] = _step(noop_task, prev)
        prev = f"b{i:05d}"
    spec["root"]["dag"]["tasks"] = new
    return spec


def _step(task: dict[str, Any], after: str | None) -> dict[str, Any]:
    t = copy.deepcopy(task)
    t.pop("dependentTasks", None)
    if after:
        t["dependentTasks"] = [after]
    return t


def _fan(spec: dict[str, Any], n: int) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    (loop,) = spec["root"]["dag"]["tasks"].values()
    loop["parameterIterator"]["items"]["raw"] = json.dumps(list(range(n)))
    return spec


@pytest.fixture
def warm(tmp_path: Path, workbench_home: Path) -> LocalRoot:
    """A local root whose cache holds ``noop(x=7)``'s result."""
    root = LocalRoot(workbench_home)
    s = execute.start(_compiled(one, tmp_path), root=root)
    assert s.status == "SUCCEEDED" and not s.tasks[0]["cached"]
    return root


def test_a_2000_task_parallel_for_is_cached_first_time_and_on_rerun(
    warm: LocalRoot, tmp_path: Path
) -> None:
    spec = _fan(_compiled(fan2, tmp_path), 2000)
    for _ in range(2):
        t0 = time.perf_counter()
        s = execute.start(spec, root=warm)
        took = time.perf_counter() - t0
        assert s.status == "SUCCEEDED", s.failures
        assert len(s.tasks) == 2000 and all(t["cached"] for t in s.tasks)
        assert took < 30, f"2,000 cache hits took {took:.1f}s"
    with sqlite3.connect(warm.runs_db) as c:
        (hits,) = c.execute("SELECT hits FROM cache").fetchone()
    assert hits == 4000
    # `runs show` and the UI's run page list a page of the tasks, and count them all.
    store = RunStore(warm.runs_db)
    d = run_details(store, store.find_run(s.run_id))
    assert d["tasks_total"] == 2000 and len(d["tasks"]) == 200
    assert d["task_counts"] == {"cached": 2000, "SUCCEEDED": 2000}
    page = run_page(store, s.run_id, None, offset=1900)
    assert [t["name"] for t in page["run"]["tasks"]][-1] == "for-loop-2[1999]/noop"
    assert page["run"]["tasks_total"] == 2000 and len(page["run"]["tasks"]) == 100


def test_a_2000_step_chain_of_cache_hits(warm: LocalRoot, tmp_path: Path) -> None:
    spec = _chain(_compiled(chain2, tmp_path), 2000)
    s = execute.start(spec, root=warm)
    assert s.status == "SUCCEEDED", s.failures
    assert len(s.tasks) == 2000 and all(t["cached"] for t in s.tasks)
    # a rerun of the same run (resume) after it succeeded is refused, a new run is all cached
    s2 = execute.start(spec, root=warm)
    assert s2.status == "SUCCEEDED" and all(t["cached"] for t in s2.tasks)


_ENGINE = """
import sys
from pathlib import Path
import yaml
from workbench_dsl.engine import execute
from workbench_dsl.engine.run_view import run_details
from workbench_dsl.engine.store import RunStore
from workbench_dsl.ui.run_page import run_page
from workbench_dsl.paths import LocalRoot
spec = yaml.safe_load(Path(sys.argv[1]).read_text())
execute.start(spec, {"path": sys.argv[3]}, root=LocalRoot(Path(sys.argv[2])))
"""


def test_resume_of_a_half_done_1000_task_run_after_sigkill(warm: LocalRoot, tmp_path: Path) -> None:
    """500 steps done, the engine killed while step 501 runs; resume does only what is left."""
    spec = _chain(_compiled(gated, tmp_path), 500, 499)
    assert len(spec["root"]["dag"]["tasks"]) == 1000
    spec_path = tmp_path / "gated.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    hold = tmp_path / "hold"
    hold.touch()
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENGINE, str(spec_path), str(warm.root), str(hold)],
        start_new_session=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if _status(warm, "gate") == "RUNNING":
                break
            assert proc.poll() is None, "the engine ended before the gate started"
            time.sleep(0.1)
        else:
            pytest.fail("the gate task never started")
        os.killpg(proc.pid, signal.SIGKILL)  # the engine and its workers, as a crash would
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with sqlite3.connect(warm.runs_db) as c:
        (run_id,) = c.execute("SELECT run_id FROM runs WHERE pipeline='gated'").fetchone()
        done = c.execute(
            "SELECT COUNT(*) FROM tasks WHERE run_id=? AND status='SUCCEEDED'", (run_id,)
        ).fetchone()[0]
    assert done == 500
    hold.unlink()
    s = execute.resume(run_id, root=warm)
    assert s.status == "SUCCEEDED", s.failures
    by_name = {t["name"]: t for t in s.tasks}
    assert len(by_name) == 1000
    assert by_name["gate"]["attempts"] == 2  # the killed attempt, and the one that finished
    assert all(by_name[f"b{i:05d}"]["cached"] for i in range(499))
    with sqlite3.connect(warm.runs_db) as c:
        reused = c.execute(
            "SELECT COUNT(*) FROM tasks WHERE run_id=? AND reused=1", (run_id,)
        ).fetchone()[0]
    assert reused == 500


def _status(root: LocalRoot, task: str) -> str | None:
    if not root.runs_db.exists():
        return None
    try:
        with sqlite3.connect(root.runs_db, timeout=5) as c:
            row = c.execute("SELECT status FROM tasks WHERE task=?", (task,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def test_a_fully_cached_rerun_starts_no_task_runner_and_still_emits_lineage(
    warm: LocalRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench_dsl.backends.lineage.config import load_settings
    from workbench_dsl.engine import runner

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a fully cached run made a task runner")

    monkeypatch.setattr(runner.TaskRunner, "__init__", refuse)
    events_file = load_settings(warm).events_file
    assert events_file is not None
    before = events_file.read_text().count("\n") if events_file.exists() else 0
    s = execute.start(_fan(_compiled(fan2, tmp_path), 50), root=warm)
    assert s.status == "SUCCEEDED", s.failures
    assert all(t["cached"] for t in s.tasks)
    lines = events_file.read_text().splitlines()[before:]
    types = [json.loads(line)["eventType"] for line in lines]
    # the run's START and end, then a START and a COMPLETE per cached task
    assert types.count("START") == 51 and types.count("COMPLETE") == 51
    assert not any("null" in line for line in lines)
