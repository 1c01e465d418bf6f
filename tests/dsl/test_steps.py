"""Step decorators and @pipeline: plain functions stay testable, options validate early,
profiles lower to KFP resources and kfp-kubernetes config."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import workbench_dsl as wb
from workbench_dsl import Dataset, Input, Output, develop, pipeline
from workbench_dsl.compile.compiler import compile_to_text
from workbench_dsl.errors import PipelineDefinitionError

REPO = Path(__file__).resolve().parents[2]


@develop
def double(x: int) -> int:
    """Twice x."""
    return 2 * x


@develop(retries=2, retry_backoff="1m", timeout=90, env={"A": 1})
def produce(n: int, data: Output[Dataset]) -> None:
    with open(data.path, "w") as f:
        f.write(str(n))


@develop
def consume(data: Input[Dataset]) -> str:
    with open(data.path) as f:
        return f.read()


def test_plain_function_stays_callable() -> None:
    assert double.fn(4) == 8
    assert double.__doc__ == "Twice x."
    assert double.__name__ == "double"
    assert inspect.signature(double) == inspect.signature(double.fn)


def test_calling_outside_a_pipeline_says_what_to_do() -> None:
    with pytest.raises(
        PipelineDefinitionError, match=r"double\(\) was called outside a @pipeline; call double.fn"
    ):
        double(x=1)


def test_positional_arguments_are_refused() -> None:
    @pipeline
    def p(x: int = 1) -> None:
        double(x)

    with pytest.raises(PipelineDefinitionError, match="takes keyword arguments only"):
        _ = p.component


def test_passing_an_output_says_read_it_from_the_task() -> None:
    @pipeline
    def p(n: int = 1) -> None:
        produce(n=n, data="x")

    with pytest.raises(PipelineDefinitionError, match=r"argument 'data' is an output"):
        _ = p.component


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries must be a whole number >= 0"),
        ({"retries": 1.5}, "retries must be a whole number >= 0"),
        ({"retry_backoff": "10s"}, "retry_backoff is set but retries is 0"),
        ({"timeout": "soon"}, "is not a duration"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"env": {"1BAD": "x"}}, "env name '1BAD' is not a valid variable name"),
        ({"env": {"OK": [1]}}, r"env\['OK'\] must be a string or number"),
        ({"cache": "yes"}, "cache must be True or False"),
        ({"profile": ""}, "profile must be a name"),
    ],
)
def test_options_are_validated_at_decoration(kwargs: dict, message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):

        @develop(**kwargs)
        def step(x: int) -> int:
            return x


def test_options_lower_to_the_compiled_spec() -> None:
    @pipeline
    def options_pipeline(n: int = 3) -> str:
        d = produce(n=n)
        return consume(data=d.outputs["data"]).output

    docs = list(yaml.safe_load_all(compile_to_text(options_pipeline)))
    spec, platform = docs[0], docs[1]
    task = spec["root"]["dag"]["tasks"]["produce"]
    assert task["retryPolicy"] == {
        "backoffDuration": "60s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "3600s",
        "maxRetryCount": 2,
    }
    assert task["cachingOptions"] == {"enableCache": True}
    container = spec["deploymentSpec"]["executors"]["exec-produce"]["container"]
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert container["image"] == "python:3.11-slim"
    assert container["resources"]["resourceCpuRequest"] == "1"
    assert container["resources"]["resourceMemoryLimit"] == "2Gi"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-produce"]
    assert k8s["activeDeadlineSeconds"] == "90"
    assert k8s["podMetadata"]["labels"] == {"workbench.dev/profile": "cpu-small"}
    assert k8s["podMetadata"]["annotations"] == {"workbench.dev/cost-per-hour": "0.05"}


def test_gpu_profile_lowers_to_accelerator_and_toleration() -> None:
    @develop(profile="gpu-1", cache=False)
    def gpu_step(x: int) -> int:
        return x

    @pipeline
    def gpu_pipeline(x: int = 1) -> int:
        return gpu_step(x=x).output

    spec, platform = list(yaml.safe_load_all(compile_to_text(gpu_pipeline)))
    resources = spec["deploymentSpec"]["executors"]["exec-gpu-step"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert spec["root"]["dag"]["tasks"]["gpu-step"]["cachingOptions"] == {}
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-gpu-step"]
    assert k8s["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]


def test_pipeline_name_defaults_to_the_function_name() -> None:
    @pipeline
    def my_training_flow(x: int = 1) -> int:
        return double(x=x).output

    assert my_training_flow.name == "my-training-flow"
    spec = yaml.safe_load_all(compile_to_text(my_training_flow)).__next__()
    assert spec["pipelineInfo"]["name"] == "my-training-flow"
    assert spec["root"]["inputDefinitions"]["parameters"]["x"]["defaultValue"] == 1


def test_bad_pipeline_name_is_refused_at_decoration() -> None:
    with pytest.raises(PipelineDefinitionError, match="lowercase letters, digits and '-'"):

        @pipeline(name="Churn Model")
        def p() -> None:
            pass


def test_python_api_compile_writes_a_file_kfp_loads(tmp_path: Path) -> None:
    from kfp import components

    @pipeline
    def api_pipeline(x: int = 2) -> int:
        return double(x=x).output

    out = wb.compile(api_pipeline, tmp_path / "p.yaml")
    loaded = components.load_component_from_file(str(out))
    assert loaded.name == "api-pipeline"


def test_compiling_is_byte_identical_across_processes(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "12345"):
        out = tmp_path / f"q{seed}.yaml"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "workbench_dsl",
                "compile",
                "pipelines/quickstart.py",
                "-o",
                str(out),
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert b"timestamp" not in outputs[0].lower()
