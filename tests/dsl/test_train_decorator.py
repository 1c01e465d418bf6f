"""``@train``: options validated at decoration, the function's own interface, compute on the TrainJob."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from workbench_dsl import Dataset, Input, Model, Output, pipeline, train
from workbench_dsl.compile.compiler import compile_to_text
from workbench_dsl.compile.loader import find_pipelines, import_module
from workbench_dsl.dsl.train import TrainStep
from workbench_dsl.errors import PipelineDefinitionError


@train(nodes=2, procs_per_node=4, profile="gpu-1", env={"EPOCHS": 3}, timeout="2h", retries=1)
def fit(data: Input[Dataset], lr: float, model: Output[Model], epochs: int = 3) -> float:
    """Fit the model."""
    return lr * epochs


def test_plain_function_and_job_shape() -> None:
    assert isinstance(fit, TrainStep)
    assert fit.fn(None, 0.5, None) == 1.5
    assert fit.__doc__ == "Fit the model."
    assert (fit.nodes, fit.procs_per_node, fit.world_size, fit.runtime) == (
        2,
        4,
        8,
        "torch-distributed",
    )
    assert repr(fit).startswith("<train step fit at ")


def test_bare_decorator_is_one_process() -> None:
    @train
    def small(x: int) -> int:
        return x

    assert (small.nodes, small.procs_per_node) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": 0}, "f: nodes must be a whole number >= 1 (got 0)"),
        ({"nodes": True}, "f: nodes must be a whole number >= 1 (got True)"),
        ({"procs_per_node": "2"}, "f: procs_per_node must be a whole number >= 1 (got '2')"),
        (
            {"runtime": "Torch Distributed"},
            "f: runtime must name a Kubeflow Trainer runtime such as 'torch-distributed' (got 'Torch Distributed')",
        ),
        (
            {"timeout": "soon"},
            "f: timeout='soon' is not a duration: write seconds or '30s', '5m', '2h', '1d'",
        ),
        ({"env": {"bad name": "x"}}, "f: env name 'bad name' is not a valid variable name"),
    ],
)
def test_bad_options_fail_at_decoration(kwargs: dict, message: str) -> None:
    with pytest.raises(PipelineDefinitionError) as info:

        @train(**kwargs)
        def f(x: int) -> int:
            return x

    assert str(info.value) == message


def test_component_interface_is_the_functions() -> None:
    spec = fit.component.component_spec
    assert sorted(spec.inputs) == ["data", "epochs", "lr"]
    assert spec.inputs["epochs"].default == 3
    assert sorted(spec.outputs) == ["Output", "model"]
    program = spec.implementation.container.command[-1]
    assert "from workbench_dsl.runtime.train import launch" in program
    assert spec.implementation.container.image == "ghcr.io/workbench-dsl/runtime:0.1.0"


def test_profile_goes_to_the_trainjob_not_the_launcher_pod() -> None:
    from kfp import dsl

    @pipeline
    def p(lr: float = 0.1) -> None:
        data = dsl.importer(artifact_uri="gs://b/data.csv", artifact_class=Dataset)
        fit(data=data.output, lr=lr)

    doc = yaml.safe_load(compile_to_text(p).split("\n---\n")[0])
    container = doc["deploymentSpec"]["executors"]["exec-fit"]["container"]
    assert "resources" not in container  # the launcher pod only watches the job
    config = fit.job_config(fit.config).to_json()
    assert config["cluster"]["resources"] == {
        "cpu": "4",
        "memory": "24Gi",
        "accelerator": "nvidia.com/gpu",
        "accelerator_count": 1,
    }
    assert config["cluster"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert config["cluster"]["annotations"] == {"workbench.dev/cost-per-hour": "1.1"}
    assert (config["nodes"], config["procs_per_node"], config["timeout"]) == (2, 4, 7200.0)
    assert config["env"] == {"EPOCHS": "3"}


def test_paths_and_artifact_returns_are_refused_with_the_fix() -> None:
    from kfp.dsl import InputPath

    @train
    def by_path(data: InputPath("Dataset"), lr: float) -> float:  # type: ignore[valid-type]
        return lr

    with pytest.raises(
        PipelineDefinitionError,
        match=r"by_path\(\): parameter 'data' uses InputPath/OutputPath; .*Input\[Dataset\]",
    ):
        by_path.component  # noqa: B018

    @train
    def returns_model(lr: float) -> Model:
        return Model()

    with pytest.raises(
        PipelineDefinitionError,
        match=r"returns_model\(\) returns an artifact; write it to an Output",
    ):
        returns_model.component  # noqa: B018


def test_cluster_settings_and_the_object_store_secret(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        textwrap.dedent(
            """
            [cluster]
            namespace = "ml"
            runtime_image = "registry.example/wb:1"
            artifact_store = "http://minio.kubeflow:9000"
            artifact_secret = "mlpipeline-minio-artifact"
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "flow.py").write_text(
        textwrap.dedent(
            """
            from workbench_dsl import pipeline, train

            @train(nodes=2)
            def fit(lr: float) -> float:
                return lr

            @pipeline
            def flow(lr: float = 0.1) -> None:
                fit(lr=lr)
            """
        ),
        encoding="utf-8",
    )
    module = import_module(str(tmp_path / "flow.py"))
    docs = list(yaml.safe_load_all(compile_to_text(find_pipelines(module)["flow"])))
    exec_spec = docs[0]["deploymentSpec"]["executors"]["exec-fit"]["container"]
    assert exec_spec["image"] == "registry.example/wb:1"
    program = exec_spec["command"][-1]
    baked = json.loads(eval(program.split(", ")[-2]))  # the config literal the launcher reads
    assert baked["cluster"]["namespace"] == "ml"
    assert baked["cluster"]["artifact_endpoint"] == "http://minio.kubeflow:9000"
    assert baked["cluster"]["artifact_secret"] == "mlpipeline-minio-artifact"
    secret = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-fit"][
        "secretAsEnv"
    ][0]
    assert secret["secretName"] == "mlpipeline-minio-artifact"
    assert secret["optional"] is True  # a local run is not refused for it
    assert {m["envVar"] for m in secret["keyToEnv"]} == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
