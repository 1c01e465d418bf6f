"""End to end: each IR feature of a compiled KFP pipeline, run by the real scheduler and task runner.

Every pipeline here is plain KFP (``kfp.dsl``), compiled by ``kfp.compiler`` in
the test, and executed from its YAML only; the assertions are on the outputs
a user would see.
"""

import time
from pathlib import Path
from typing import Any, List, NamedTuple

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

pytestmark = pytest.mark.slow

IMG = "python:3.11"


def task(summary: Any, name: str) -> dict[str, Any]:
    for t in summary.tasks:
        if t["name"] == name or t["name"].rsplit("/", 1)[-1] == name:
            return dict(t)
    raise KeyError(f"{name} not in {[t['name'] for t in summary.tasks]}")


# -- components -------------------------------------------------------------------------------


@dsl.component(base_image=IMG)
def add(a: int, b: int) -> int:
    return a + b


@dsl.component(base_image=IMG)
def echo(text: str) -> str:
    return text


@dsl.component(base_image=IMG)
def write(text: str, out: Output[Dataset]):
    with open(out.path, "w") as f:
        f.write(text)
    out.metadata["chars"] = len(text)


@dsl.component(base_image=IMG)
def read(data: Input[Dataset]) -> str:
    with open(data.path) as f:
        return f"{f.read()}:{data.metadata['chars']}"


@dsl.component(base_image=IMG)
def split(n: int) -> list:
    return list(range(n))


@dsl.component(base_image=IMG)
def total(xs: list) -> str:
    return ",".join(f"{type(x).__name__}:{x}" for x in xs)


@dsl.component(base_image=IMG)
def fail(message: str) -> str:
    raise ValueError(message)


@dsl.component(base_image=IMG)
def final(status: dsl.PipelineTaskFinalStatus) -> str:
    return f"{status.state}:{status.pipeline_task_name}"


@dsl.component(base_image=IMG)
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@dsl.component(base_image=IMG)
def two() -> NamedTuple("Out", [("x", int), ("s", str)]):
    return (2, "two")


# -- parameters and artifacts -----------------------------------------------------------------------


def test_parameters_defaults_and_int_typing(run_kfp: Any) -> None:
    @dsl.pipeline(name="params")
    def p(a: int = 5, b: int = 7) -> int:
        return add(a=add(a=a, b=b).output, b=1).output

    s = run_kfp(p)
    assert s.status == "SUCCEEDED"
    assert s.outputs == {"Output": 13}
    assert isinstance(s.outputs["Output"], int)
    assert run_kfp(p, {"a": 1}).outputs == {"Output": 9}


def test_artifacts_and_namedtuple_outputs(run_kfp: Any) -> None:
    @dsl.pipeline(name="arts")
    def p(text: str = "hello") -> str:
        w = write(text=text)
        two()
        r = read(data=w.outputs["out"])
        return echo(text=r.output).output

    s = run_kfp(p)
    assert s.outputs == {"Output": "hello:5"}


def test_pipeline_artifact_output_is_stored_read_only(run_kfp: Any) -> None:
    @dsl.pipeline(name="art-out")
    def p() -> Dataset:
        return write(text="abc").outputs["out"]

    s = run_kfp(p)
    art = s.outputs["Output"]
    path = Path(art["uri"])
    assert path.read_text() == "abc"
    assert art["metadata"] == {"chars": 3}
    import hashlib

    assert art["sha256"] == hashlib.sha256(b"abc").hexdigest()
    import stat

    assert not stat.S_IMODE(path.stat().st_mode) & 0o222  # read-only (root ignores it, others not)


def test_nested_pipeline(run_kfp: Any) -> None:
    @dsl.pipeline(name="inner")
    def inner(x: int) -> int:
        return add(a=x, b=10).output

    @dsl.pipeline(name="outer")
    def outer(x: int = 1) -> int:
        return add(a=inner(x=x).output, b=100).output

    s = run_kfp(outer)
    assert s.outputs == {"Output": 111}
    assert task(s, "inner/add")["status"] == "SUCCEEDED"


# -- control flow ------------------------------------------------------------------------------------


def test_if_elif_else_and_oneof(run_kfp: Any) -> None:
    @dsl.pipeline(name="branches")
    def p(n: int = 5) -> str:
        with dsl.If(n > 10):
            a = echo(text="big")
        with dsl.Elif(n > 3):
            b = echo(text="medium")
        with dsl.Else():
            c = echo(text="small")
        return dsl.OneOf(a.output, b.output, c.output)

    assert run_kfp(p).outputs == {"Output": "medium"}
    s = run_kfp(p, {"n": 50})
    assert s.outputs == {"Output": "big"}
    skipped = [t for t in s.tasks if t["status"] == "SKIPPED"]
    assert len(skipped) == 2
    assert run_kfp(p, {"n": 0}).outputs == {"Output": "small"}


def test_condition_on_task_output_and_strings(run_kfp: Any) -> None:
    @dsl.pipeline(name="cond-str")
    def p(word: str = "heads") -> str:
        e = echo(text=word)
        with dsl.If(e.output == "heads"):
            h = echo(text="H")
        with dsl.Else():
            t = echo(text="T")
        return dsl.OneOf(h.output, t.output)

    assert run_kfp(p).outputs == {"Output": "H"}
    assert run_kfp(p, {"word": "tails"}).outputs == {"Output": "T"}


def test_parallel_for_static_pipeline_input_and_task_output_collected(run_kfp: Any) -> None:
    @dsl.pipeline(name="loops")
    def p(items: list = [10, 20]) -> str:  # noqa: B006 - KFP pipeline defaults
        with dsl.ParallelFor([1, 2, 3]) as i:
            a = add(a=i, b=1)
        with dsl.ParallelFor(items) as j:
            b = add(a=j, b=0)
        s = split(n=2)
        with dsl.ParallelFor(s.output) as k:
            c = add(a=k, b=100)
        t1 = total(xs=dsl.Collected(a.output))
        t2 = total(xs=dsl.Collected(b.output))
        t3 = total(xs=dsl.Collected(c.output))
        return echo(text=f"{t1.output}|{t2.output}|{t3.output}").output

    s = run_kfp(p)
    # Collected keeps the element type (kfp.local would give floats).
    assert s.outputs == {"Output": "int:2,int:3,int:4|int:10,int:20|int:100,int:101"}
    assert task(s, "for-loop-2[2]/add")["status"] == "SUCCEEDED"
    names = [t["name"] for t in s.tasks]
    assert names.index("split") < names.index("for-loop-4[0]/add-3") < names.index("echo")


def test_parallel_for_over_dicts_uses_expression_selectors(run_kfp: Any) -> None:
    @dsl.pipeline(name="dict-loop")
    def p() -> str:
        with dsl.ParallelFor([{"a": 1, "b": 10}, {"a": 2, "b": 20}]) as item:
            s = add(a=item.a, b=item.b)
        return total(xs=dsl.Collected(s.output)).output

    assert run_kfp(p).outputs == {"Output": "int:11,int:22"}


def test_parallel_for_over_artifacts(run_kfp: Any) -> None:
    @dsl.pipeline(name="writers")
    def writers(texts: list = ["a", "bb"]) -> List[Dataset]:  # noqa: B006
        with dsl.ParallelFor(texts) as t:
            w = write(text=t)
        return dsl.Collected(w.outputs["out"])

    @dsl.pipeline(name="art-loop")
    def p() -> str:
        ws = writers()
        with dsl.ParallelFor(items=ws.output) as art:
            r = read(data=art)
        return total(xs=dsl.Collected(r.output)).output

    assert run_kfp(p).outputs == {"Output": "str:a:1,str:bb:2"}


def test_parallelism_limit_and_speed(run_kfp: Any) -> None:
    @dsl.pipeline(name="naps")
    def p() -> list:
        with dsl.ParallelFor([1, 2, 3, 4, 5, 6, 7, 8], parallelism=8):
            n = nap(seconds=1.0)
        return dsl.Collected(n.output)

    t0 = time.time()
    s = run_kfp(p)
    elapsed = time.time() - t0
    assert s.outputs == {"Output": [1.0] * 8}
    assert elapsed < 2.5 + 1.0, elapsed  # the target is 2.5 s; the machine is noisy

    @dsl.pipeline(name="naps-2")
    def q() -> list:
        with dsl.ParallelFor([1, 2, 3, 4], parallelism=2):
            n = nap(seconds=0.5)
        return dsl.Collected(n.output)

    t0 = time.time()
    # Without the cache: identical iterations 3 and 4 would reuse 1 and 2's results.
    assert run_kfp(q, cache=False).status == "SUCCEEDED"
    assert time.time() - t0 >= 1.0  # two at a time: at least two rounds


def test_exit_handler_runs_on_failure_and_gets_final_status(run_kfp: Any) -> None:
    @dsl.pipeline(name="exit")
    def p() -> None:
        cleanup = final()
        with dsl.ExitHandler(cleanup):
            f = fail(message="boom")
            echo(text="never").after(f)

    s = run_kfp(p)
    assert s.status == "FAILED"
    assert task(s, "fail")["status"] == "FAILED"
    assert task(s, "echo")["status"] == "NOT_RUN"
    assert task(s, "final")["status"] == "SUCCEEDED"
    assert "ValueError: boom" in s.failures[0]["error"]
    assert Path(s.failures[0]["log_path"]).is_file()


def test_final_status_on_success(run_kfp: Any, workbench_home: Path) -> None:
    @dsl.pipeline(name="exit-ok")
    def p() -> None:
        cleanup = final()
        with dsl.ExitHandler(cleanup):
            echo(text="fine")

    s = run_kfp(p)
    assert s.status == "SUCCEEDED"
    from workbench_dsl.engine.store import RunStore

    rows = {r["task"]: r for r in RunStore(workbench_home / "runs.db").tasks(s.run_id)}
    import json

    assert (
        json.loads(rows["final"]["outputs_json"])["parameters"]["Output"]
        == "COMPLETE:exit-handler-1"
    )


def test_ignore_upstream_failure(run_kfp: Any) -> None:
    @dsl.pipeline(name="ignore")
    def p() -> None:
        f = fail(message="x")
        echo(text="cleanup").after(f).ignore_upstream_failure()

    s = run_kfp(p)
    assert s.status == "FAILED"
    assert task(s, "echo")["status"] == "SUCCEEDED"


def test_fail_fast_stops_new_tasks(run_kfp: Any) -> None:
    @dsl.pipeline(name="failfast")
    def p() -> None:
        fail(message="first")
        slow = nap(seconds=0.5)
        echo(text="after").after(slow)

    s = run_kfp(p)
    assert s.status == "FAILED"
    assert task(s, "nap")["status"] == "SUCCEEDED"  # already running: it finishes
    assert task(s, "echo")["status"] == "NOT_RUN"


# -- retries, timeouts, env -------------------------------------------------------------------------


@dsl.component(base_image=IMG)
def flaky(counter: str, fail_times: int) -> int:
    import os

    n = 0
    if os.path.exists(counter):
        with open(counter) as f:
            n = int(f.read())
    with open(counter, "w") as f:
        f.write(str(n + 1))
    if n < fail_times:
        raise RuntimeError(f"attempt {n + 1}")
    return n + 1


def test_retry_with_backoff(run_kfp: Any, tmp_path: Path) -> None:
    @dsl.pipeline(name="retry")
    def p(counter: str) -> int:
        return (
            flaky(counter=counter, fail_times=2)
            .set_retry(num_retries=3, backoff_duration="1s", backoff_factor=0.25)
            .output
        )

    t0 = time.time()
    s = run_kfp(p, {"counter": str(tmp_path / "c")})
    assert s.outputs == {"Output": 3}
    assert task(s, "flaky")["attempts"] == 3
    assert time.time() - t0 >= 1.25  # 1 s, then 0.25 s of backoff

    s = run_kfp(p, {"counter": str(tmp_path / "d")}, cache=False)
    assert s.status == "SUCCEEDED"


def test_retries_exhausted(run_kfp: Any, tmp_path: Path) -> None:
    @dsl.pipeline(name="retry-out")
    def p(counter: str) -> int:
        return flaky(counter=counter, fail_times=5).set_retry(num_retries=1).output

    s = run_kfp(p, {"counter": str(tmp_path / "c")})
    assert s.status == "FAILED"
    assert task(s, "flaky")["attempts"] == 2
    assert "RuntimeError: attempt 2" in s.failures[0]["error"]


def test_timeout_from_kfp_kubernetes(run_kfp: Any) -> None:
    from kfp import kubernetes

    @dsl.pipeline(name="timeout")
    def p() -> None:
        t = nap(seconds=30.0)
        kubernetes.set_timeout(t, 1)

    t0 = time.time()
    s = run_kfp(p)
    assert s.status == "FAILED"
    assert "timed out after 1s" in s.failures[0]["error"]
    assert time.time() - t0 < 10


@dsl.component(base_image=IMG)
def env_of(name: str) -> str:
    import os

    return os.environ.get(name, "<unset>")


def test_env_vars_and_engine_contract(run_kfp: Any) -> None:
    @dsl.pipeline(name="env")
    def p() -> str:
        a = env_of(name="GREETING").set_env_variable("GREETING", "hi")
        b = env_of(name="WORKBENCH_ENGINE")
        c = env_of(name="WORKBENCH_TASK")
        return echo(text=f"{a.output}/{b.output}/{c.output}").output

    assert run_kfp(p).outputs == {"Output": "hi/local/env-of-3"}


def test_container_component_outputs_are_typed(run_kfp: Any) -> None:
    @dsl.container_component
    def count(n: int, out: dsl.OutputPath(int), items: dsl.OutputPath(list)):
        return dsl.ContainerSpec(
            image="alpine",
            command=["sh", "-c", f'echo -n {n} > "$0"; echo -n "[1, 2]" > "$1"', out, items],
        )

    @dsl.pipeline(name="container")
    def p() -> int:
        c = count(n=41)
        return add(a=c.outputs["out"], b=1).output

    assert run_kfp(p).outputs == {"Output": 42}


def test_importer_local_file_is_stored_by_content(run_kfp: Any, tmp_path: Path) -> None:
    src = tmp_path / "data.txt"
    src.write_text("imported")

    @dsl.pipeline(name="imp")
    def p(uri: str) -> str:
        imp = dsl.importer(artifact_uri=uri, artifact_class=Dataset, metadata={"chars": "8"})
        return read(data=imp.output).output

    s = run_kfp(p, {"uri": str(src)})
    assert s.outputs == {"Output": "imported:8"}
    src.write_text("changed!")  # the stored copy of the completed run is untouched
    s2 = run_kfp(p, {"uri": str(src)})
    assert s2.outputs == {"Output": "changed!:8"}
    assert not task(s2, "read")["cached"]


def test_workspace_is_shared_by_the_run(run_kfp: Any) -> None:
    @dsl.component(base_image=IMG)
    def put(ws: str) -> str:
        import os

        os.makedirs(ws, exist_ok=True)
        path = os.path.join(ws, "f.txt")
        with open(path, "w") as f:
            f.write("shared")
        return path

    @dsl.component(base_image=IMG)
    def get(path: str) -> str:
        return open(path).read()

    @dsl.pipeline(
        name="ws",
        pipeline_config=dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size="1Gi")),
    )
    def p() -> str:
        return get(path=put(ws=dsl.WORKSPACE_PATH_PLACEHOLDER).output).output

    assert run_kfp(p).outputs == {"Output": "shared"}


def test_missing_input_artifact_of_skipped_producer(run_kfp: Any) -> None:
    @dsl.component(base_image=IMG)
    def maybe(data: Input[Artifact] = None) -> str:
        return "none" if data is None else "some"

    @dsl.pipeline(name="optional-art")
    def p() -> str:
        return maybe().output

    assert run_kfp(p).outputs == {"Output": "none"}
