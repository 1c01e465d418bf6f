"""`workbench_dsl.local_run.run()`: the Python API over the same engine."""

from pathlib import Path

import pytest
from kfp import dsl

from workbench_dsl.errors import UsageError
from workbench_dsl.local_run import RunResult, run

pytestmark = pytest.mark.slow


@dsl.component(base_image="python:3.11")
def double(x: int) -> int:
    return 2 * x


@dsl.pipeline(name="api")
def api_pipeline(x: int = 2) -> int:
    return double(x=double(x=x).output).output


def test_run_a_kfp_pipeline_object_and_its_yaml(tmp_path: Path) -> None:
    r = run(api_pipeline, params={"x": 3})
    assert isinstance(r, RunResult) and r.ok
    assert r.outputs == {"Output": 12}
    assert [t["cached"] for t in r.tasks] == [False, False]
    from kfp import compiler

    y = tmp_path / "api.yaml"
    compiler.Compiler().compile(api_pipeline, str(y))
    r2 = run(y, params={"x": 3})
    assert r2.outputs == {"Output": 12}
    assert all(t["cached"] for t in r2.tasks)
    assert run(str(y), params={"x": 3}, cache=False).tasks[0]["cached"] is False


def test_failures_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown parameter 'y'"):
        run(api_pipeline, params={"y": 1})
    with pytest.raises(UsageError, match="not int"):
        run(42)


def test_run_a_dsl_pipeline_object_and_module_ref(repo: Path) -> None:
    from workbench_dsl.compile.loader import load_pipeline

    ref = str(repo / "pipelines" / "quickstart.py")
    r = run(load_pipeline(ref), params={"n_estimators": 5})
    assert r.ok, r.error
    assert r.outputs["Output"].startswith(("accepted: accuracy", "rejected: accuracy"))
    statuses = {t["name"].rsplit("/", 1)[-1]: t["status"] for t in r.tasks}
    assert sorted(statuses.values()).count("SKIPPED") == 1  # one of accept/reject
    again = run(ref, params={"n_estimators": 5})  # a module ref: same YAML, so all cached
    assert again.outputs == r.outputs
    assert all(t["cached"] for t in again.tasks if t["status"] == "SUCCEEDED")
