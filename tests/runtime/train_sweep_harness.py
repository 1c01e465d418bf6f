"""Run a compiled launcher component the way a pod (or the engine's worker) does.

The step is compiled by KFP's compiler; its executor's embedded program is
taken from the YAML, imported as a module, and run by ``kfp.dsl.executor``
with a hand-built ExecutorInput, under the local engine's environment
contract. What comes back is KFP's executor output.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml


def compiled_program(component: Any) -> tuple[dict[str, Any], str, str]:
    """``(component spec dict, program source, function name)`` from the compiled YAML."""
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c.yaml"
        compiler.Compiler().compile(component, str(out))
        doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    (executor,) = doc["deploymentSpec"]["executors"].values()
    container = executor["container"]
    source = container["command"][-1]
    args = container["args"]
    fn_name = args[args.index("--function_to_execute") + 1]
    (comp,) = doc["components"].values()
    return comp, source, fn_name


def run_component(
    step: Any,
    *,
    workdir: Path,
    parameters: dict[str, Any] | None = None,
    artifacts: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Execute a step's compiled component; returns the executor output plus output paths.

    Args:
        step: A workbench step (or KFP component).
        workdir: The attempt's private directory (outputs go below it).
        parameters: Input parameter values.
        artifacts: Input artifacts: name -> local path (a file or directory).
        env: Extra environment (defaults: the local engine's contract).
    """
    from kfp.dsl import executor as kfp_executor

    component = getattr(step, "component", step)
    comp, source, fn_name = compiled_program(component)
    module_path = workdir / "ephemeral_component.py"
    workdir.mkdir(parents=True, exist_ok=True)
    module_path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"ephemeral_{fn_name}_{id(workdir)}", module_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, fn_name)

    input_defs = comp.get("inputDefinitions", {})
    output_defs = comp.get("outputDefinitions", {})
    executor_input: dict[str, Any] = {
        "inputs": {"parameterValues": dict(parameters or {}), "artifacts": {}},
        "outputs": {
            "parameters": {},
            "artifacts": {},
            "outputFile": str(workdir / "executor_output.json"),
        },
    }
    for name, path in (artifacts or {}).items():
        title = input_defs["artifacts"][name]["artifactType"]["schemaTitle"]
        executor_input["inputs"]["artifacts"][name] = {
            "artifacts": [
                {"name": name, "uri": str(path), "type": {"schemaTitle": title}, "metadata": {}}
            ]
        }
    out_paths: dict[str, str] = {}
    for name, d in output_defs.get("artifacts", {}).items():
        uri = str(workdir / "outputs" / name)
        out_paths[name] = uri
        executor_input["outputs"]["artifacts"][name] = {
            "artifacts": [
                {
                    "name": name,
                    "uri": uri,
                    "type": {"schemaTitle": d["artifactType"]["schemaTitle"]},
                    "metadata": {},
                }
            ]
        }
    for name in output_defs.get("parameters", {}):
        executor_input["outputs"]["parameters"][name] = {
            "outputFile": str(workdir / "outputs" / f"{name}.param")
        }

    run_dir = workdir.parent / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    contract = {
        "WORKBENCH_ENGINE": "local",
        "WORKBENCH_RUN_ID": "run-1",
        "WORKBENCH_PIPELINE": "test",
        "WORKBENCH_TASK": getattr(step, "name", fn_name),
        "WORKBENCH_ATTEMPT": "1",
        "WORKBENCH_RUN_DIR": str(run_dir),
        "WORKBENCH_STATUS_FILE": str(workdir / "status.txt"),
        **(env or {}),
    }
    saved = {k: os.environ.get(k) for k in contract}
    cwd = os.getcwd()
    os.environ.update(contract)
    os.chdir(workdir)
    try:
        kfp_executor.Executor(executor_input, fn).execute()
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        sys.modules.pop(spec.name, None)
    output = json.loads((workdir / "executor_output.json").read_text(encoding="utf-8"))
    output["paths"] = out_paths
    return output
