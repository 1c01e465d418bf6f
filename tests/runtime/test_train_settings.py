"""``@train``'s launcher settings: one frozen type written by the decorator, read back strictly."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from workbench_dsl import Dataset, Input, Model, Output, pipeline, sweep, train
from workbench_dsl.compile.compiler import compile_to_text
from workbench_dsl.compute import Resources
from workbench_dsl.config import Config, parse_config
from workbench_dsl.dsl._launcher import function_source
from workbench_dsl.runtime.settings import SettingsError, SweepStepSettings, TrainSettings
from workbench_dsl.runtime.train import launch


@train(nodes=2, procs_per_node=3, profile="gpu-1", env={"EPOCHS": "3"}, timeout="2h")
def fit(data: Input[Dataset], lr: float, model: Output[Model]) -> float:
    return lr


@train(timeout=60)
def scale(lr: float) -> float:
    return lr * 2


def _config(tmp_path: Path) -> Config:
    text = '[cluster]\nnamespace = "ml"\n'
    path = tmp_path / "workbench.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


def _baked(step_name: str, text: str) -> dict[str, object]:
    """The settings JSON a compiled launcher component carries, as the launcher reads it."""
    doc = yaml.safe_load(text.split("\n---\n")[0])
    command = doc["deploymentSpec"]["executors"][f"exec-{step_name}"]["container"]["command"]
    program = command[-1]
    start = program.index("launch(")
    args = program[start + len("launch(") : program.index("_workbench_arguments)", start)]
    # launch(source, name, config_json, ...): the third literal is the JSON.
    import ast

    literals = ast.literal_eval("(" + args + ")")
    return json.loads(literals[2])


def test_the_compiled_component_carries_exactly_the_typed_settings(tmp_path: Path) -> None:
    @pipeline
    def p(lr: float = 0.1) -> None:
        from kfp import dsl

        data = dsl.importer(artifact_uri="gs://b/data.csv", artifact_class=Dataset)
        fit(data=data.output, lr=lr)

    baked = _baked("fit", compile_to_text(p))
    settings = TrainSettings.from_json(baked)
    assert settings == fit.job_config(fit.config)
    assert settings.to_json() == baked
    assert (settings.nodes, settings.procs_per_node, settings.world_size) == (2, 3, 6)
    assert settings.timeout == 7200.0 and settings.env == {"EPOCHS": "3"}
    assert settings.cluster.resources == Resources(
        cpu="4", memory="24Gi", accelerator="nvidia.com/gpu", accelerator_count=1
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.nodes = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nodez": 2}, "unknown field(s) nodez"),
        ({"nodes": "2"}, "nodes must be a whole number >= 1"),
        ({"nodes": True}, "nodes must be a whole number >= 1"),
        ({"procs_per_node": 0}, "procs_per_node must be a whole number >= 1"),
        ({"env": {"EPOCHS": 3}}, "env must be an object of strings"),
        ({"timeout": "2h"}, "timeout must be a number of seconds"),
        ({"runtime": 7}, "runtime must be a Kubeflow Trainer runtime name"),
        ({"cluster": {"gpu": 1}}, "cluster: cluster settings: unknown field(s) gpu"),
    ],
)
def test_the_launcher_refuses_settings_it_does_not_know(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    good = scale.job_config(_config(tmp_path)).to_json()
    bad = json.dumps({**good, **change})
    with pytest.raises(SettingsError, match="^train settings: " + re.escape(message)):
        launch(function_source(scale.fn), "scale", bad, {"lr": 0.5})
    assert launch(function_source(scale.fn), "scale", json.dumps(good), {"lr": 0.5}) == 1.0


def test_a_swept_train_steps_trials_run_its_job_and_a_plain_sweeps_one_process(
    tmp_path: Path,
) -> None:
    from workbench_dsl import space

    @sweep(space={"lr": space.uniform(0.0, 1.0)}, objective="acc", max_trials=2)
    def trial(lr: float) -> dict:  # type: ignore[type-arg]
        return {"acc": lr}

    swept = sweep(space={"lr": space.uniform(0.0, 1.0)}, objective="acc", max_trials=2)(fit)
    config = _config(tmp_path)
    plain = trial.launch_settings(config, None).job()
    assert (plain.nodes, plain.procs_per_node, plain.timeout) == (1, 1, None)
    assert plain.cluster.namespace == "ml"
    baked = json.loads(json.dumps(swept.launch_settings(config, "model").to_json()))
    job = SweepStepSettings.from_json(baked).job()
    assert job == fit.job_config(fit.config)
    assert job.launcher == "torchrun"


def test_prebuilt_parameters_build_the_same_type() -> None:
    s = TrainSettings.from_parameters(
        nodes=2,
        procs_per_node=1,
        runtime="",
        cpu="2",
        memory="",
        gpus=1,
        gpu_resource="amd.com/gpu",
        image="img:1",
        namespace="",
        artifact_store="http://minio:9000",
        artifact_secret="",
        env={"A": 1},
        timeout_s=0.0,
    )
    assert s.runtime == "torch-distributed" and s.timeout is None and s.env == {"A": "1"}
    assert s.cluster.resources == Resources(cpu="2", accelerator="amd.com/gpu", accelerator_count=1)
    assert s.cluster.namespace is None and s.cluster.artifact_endpoint == "http://minio:9000"
    assert TrainSettings.from_json(json.loads(json.dumps(s.to_json()))) == s


def test_register_settings_round_trip_from_the_compiled_component_and_refuse_strays() -> None:
    from workbench_dsl import register
    from workbench_dsl.runtime.register import RegisterSettings

    @register(model="churn", gate={"acc": ">= 0.9"}, alias="staging", approval="manual")
    def evaluate(model: Input[Model]) -> dict:  # type: ignore[type-arg]
        return {"acc": 1.0}

    @pipeline
    def p() -> None:
        from kfp import dsl

        m = dsl.importer(artifact_uri="gs://b/model", artifact_class=Model)
        evaluate(model=m.output)

    baked = _baked("evaluate", compile_to_text(p))
    settings = RegisterSettings.from_config(baked)
    assert settings.to_json() == baked
    assert (settings.model, settings.gate, settings.approval) == (
        "churn",
        {"acc": ">= 0.9"},
        "manual",
    )
    for change, message in [
        ({"gates": {}}, "unknown field(s) gates"),
        ({"gate": {"acc": 0.9}}, "gate must be an object of strings"),
        ({"approval_timeout": "1d"}, "approval_timeout must be a number of seconds"),
        ({"alias": 3}, "alias must be a string or null"),
    ]:
        with pytest.raises(SettingsError, match="^register settings: " + re.escape(message)):
            RegisterSettings.from_config({**baked, **change})
