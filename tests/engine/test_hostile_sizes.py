"""Values of tens of megabytes pass between tasks in time linear in their size.

A 100 MB string output fed to the next task took 69 s to hand to that task
(30 MB: 6.9 s, 10 MB: 0.8 s): the task runner's worker appended each pipe read
to one buffer and searched it from the start for the end of the request, and
wrote requests by slicing copies off the front. Now 100 MB takes about 3 s.
"""

import os
import threading

import pytest
from kfp import dsl

from workbench_dsl.engine.worker import _Lines, _write_all


def test_lines_come_out_whole_from_reads_of_any_size() -> None:
    lines = _Lines()
    assert lines.feed(b"ab") == []
    assert lines.feed(b"c\nd\n\ne") == [b"abc", b"d", b""]
    assert lines.feed(b"") == []
    assert lines.feed(b"f\n") == [b"ef"]


def test_a_large_write_reaches_the_reader_whole() -> None:
    data = os.urandom(1 << 20) * 8
    r, w = os.pipe()
    got: list[bytes] = []

    def read() -> None:
        while chunk := os.read(r, 1 << 16):
            got.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    _write_all(w, data)
    os.close(w)
    reader.join(timeout=30)
    os.close(r)
    assert b"".join(got) == data


@dsl.component(base_image="python:3.11")
def big_out(n: int) -> str:
    return "x" * n


@dsl.component(base_image="python:3.11")
def big_in(s: str) -> int:
    return len(s)


@dsl.pipeline(name="big-value")
def big_value(n: int) -> None:
    big_in(s=big_out(n=n).output)


@pytest.mark.slow
def test_a_48_mb_output_reaches_the_next_task_in_seconds(run_kfp) -> None:  # type: ignore[no-untyped-def]
    summary = run_kfp(big_value, {"n": 48 << 20})
    assert summary.status == "SUCCEEDED", summary.failures
    (task,) = [t for t in summary.tasks if t["name"] == "big-in"]
    # Before: about 18 s on a quiet machine (quadratic); now about 1.5 s.
    assert task["duration_s"] < 10, task


@dsl.component(base_image="python:3.11")
def boom() -> int:
    raise RuntimeError("boom")


@dsl.pipeline(name="retry-huge")
def retry_huge() -> None:
    boom().set_retry(num_retries=5, backoff_factor=3.0)


def test_a_retry_policy_with_astronomical_numbers_fails_the_task_instead_of_hanging(
    compile_yaml,
    workbench_home,  # type: ignore[no-untyped-def]
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    text = compile_yaml(retry_huge).read_text()
    assert "backoffFactor: 3.0" in text and "backoffMaxDuration: 3600s" in text
    text = text.replace("backoffFactor: 3.0", "backoffFactor: 1.0e+300")
    text = text.replace("backoffDuration: 0s", "backoffDuration: 0.001s")
    text = text.replace("backoffMaxDuration: 3600s", f"backoffMaxDuration: 1{'0' * 300}s")
    result: list[object] = []
    runner = threading.Thread(
        target=lambda: result.append(execute.start(text, {}, root=LocalRoot(workbench_home))),
        daemon=True,
    )
    runner.start()
    runner.join(timeout=60)  # it used to wait forever: the retry timer's thread overflowed
    assert result, "the run did not end"
    summary = result[0]
    assert summary.status == "FAILED"  # type: ignore[attr-defined]
    assert summary.tasks[0]["attempts"] == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "resources",
    [
        {"resourceMemoryLimit": "99999999999999999999999999999Ei"},  # 1e47 bytes
        {"resourceMemoryLimit": "1e400"},  # infinite as a float
        {"memoryLimit": 1e300},  # KFP < 2.2: GB as a float
    ],
)
def test_a_memory_limit_past_any_machine_runs_the_task_unlimited(
    resources: dict[str, object],
    compile_yaml,
    workbench_home,  # type: ignore[no-untyped-def]
) -> None:
    import yaml

    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    d = yaml.safe_load(compile_yaml(big_value).read_text())
    d["deploymentSpec"]["executors"]["exec-big-out"]["container"]["resources"] = resources
    summary = execute.start(yaml.safe_dump(d), {"n": 3}, root=LocalRoot(workbench_home))
    assert summary.status == "SUCCEEDED", summary.failures
