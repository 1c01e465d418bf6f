"""Build TaskSpecs the way the scheduler does, from components compiled by kfp inside the tests."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import yaml

from workbench_dsl import _env
from workbench_dsl.engine.task_api import TaskSpec


def compile_executor(component: Any, tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compile a one-step ``@dsl.pipeline`` around ``component``; return its executor and component spec."""
    from kfp import compiler, dsl
    from kfp.dsl.types import artifact_types

    inputs = component.component_spec.inputs or {}

    @dsl.pipeline(name="runner-test")
    def one_step():  # no return annotation: KFP would read it as an output
        # Wire every input to a pipeline-level constant placeholder of the right kind;
        # the runner never sees these values: the test builds the ExecutorInput itself.
        kwargs = {}
        for name, spec in inputs.items():
            if spec.optional:
                continue
            if "@" in spec.type:  # an artifact: imported
                cls = artifact_types._SCHEMA_TITLE_TO_TYPE[spec.type.split("@")[0]]
                kwargs[name] = dsl.importer(artifact_uri="/unused", artifact_class=cls).output
            else:
                kwargs[name] = _dummy(spec.type)
        component(**kwargs)

    path = tmp / f"{component.name}.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(one_step, str(path))
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    label, comp = next(
        (c["executorLabel"], c)
        for c in spec["components"].values()
        if "executorLabel" in c
        and "importer" not in spec["deploymentSpec"]["executors"][c["executorLabel"]]
    )
    return spec["deploymentSpec"]["executors"][label], comp


def _dummy(type_name: str) -> Any:
    return {
        "String": "x",
        "Integer": 1,
        "Float": 1.0,
        "Boolean": True,
        "List": [],
        "Dict": {},
    }.get(type_name.split("@")[0], "x")


def make_spec(
    component: Any,
    tmp: Path,
    *,
    params: dict[str, Any] | None = None,
    artifacts: dict[str, Path | list[Path]] | None = None,
    task: str = "step",
    run_id: str = "run-1",
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    executor: dict[str, Any] | None = None,
) -> TaskSpec:
    """A TaskSpec for one attempt of ``component`` with an ExecutorInput built here."""
    compiled, comp = compile_executor(component, tmp)
    workdir = tmp / "work" / task.replace("/", "_")
    outputs: dict[str, Any] = {
        "outputFile": str(workdir / "executor_output.json"),
        "parameters": {},
        "artifacts": {},
    }
    out_defs = comp.get("outputDefinitions", {})
    for name in out_defs.get("parameters", {}):
        outputs["parameters"][name] = {"outputFile": str(workdir / "outputs" / name)}
    for name, art in out_defs.get("artifacts", {}).items():
        outputs["artifacts"][name] = {
            "artifacts": [
                {
                    "name": name,
                    "type": art["artifactType"],
                    "uri": str(workdir / "artifacts" / name),
                    "metadata": {},
                }
            ]
        }
    in_arts: dict[str, Any] = {}
    in_defs = comp.get("inputDefinitions", {}).get("artifacts", {})
    for name, paths in (artifacts or {}).items():
        listed = paths if isinstance(paths, list) else [paths]
        in_arts[name] = {
            "artifacts": [
                {
                    "name": f"{name}-{i}",
                    "type": in_defs[name]["artifactType"],
                    "uri": str(p),
                    "metadata": {"source": "test"},
                }
                for i, p in enumerate(listed)
            ]
        }
    executor_input = {
        "inputs": {"parameterValues": dict(params or {}), "artifacts": in_arts},
        "outputs": outputs,
    }
    base_env = {
        _env.ENGINE: "local",
        _env.RUN_ID: run_id,
        _env.PIPELINE: "runner-test",
        _env.TASK: task,
        _env.ATTEMPT: "1",
        _env.RUN_DIR: str(tmp / "run"),
    }
    return TaskSpec(
        run_id=run_id,
        task=task,
        attempt=1,
        executor=executor or compiled,
        executor_input=executor_input,
        env={**base_env, **(env or {})},
        workdir=workdir,
        log_path=tmp / "logs" / f"{task.replace('/', '_')}.log",
        timeout=timeout,
    )


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
