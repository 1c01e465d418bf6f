"""@register: options validated at decoration, the compiled launcher's interface and config."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench_dsl import Dataset, If, Input, Model, Output, develop, pipeline, register
from workbench_dsl.compile.compiler import compile_to_text
from workbench_dsl.errors import PipelineDefinitionError


@register(model="churn", gate={"accuracy": ">= 0.9", "latency_ms": "< 50"}, alias="staging")
def evaluate(model: Input[Model], data: Input[Dataset], threshold: float = 0.5) -> dict:
    """Score the model."""
    return {"accuracy": 1.0, "latency_ms": 3.0}


@develop
def fit(model: Output[Model], data: Output[Dataset]) -> None:
    pass


@develop
def announce(uri: str) -> str:
    return uri


def _program(doc: dict[str, Any], executor: str) -> str:
    return doc["deploymentSpec"]["executors"][executor]["container"]["command"][-1]


def test_plain_function_stays_callable() -> None:
    assert evaluate.fn(model=None, data=None) == {"accuracy": 1.0, "latency_ms": 3.0}
    assert evaluate.kind == "register"
    assert evaluate.__doc__ == "Score the model."


def test_compiled_interface_has_the_inputs_and_three_outputs() -> None:
    spec = evaluate.component.component_spec
    assert set(spec.inputs) == {"model", "data", "threshold"}
    assert {k: v.type for k, v in spec.outputs.items()} == {
        "promoted": "Boolean",
        "version": "String",
        "model_uri": "String",
    }


def test_downstream_steps_branch_on_promoted() -> None:
    @pipeline(name="gated")
    def gated() -> None:
        m = fit()
        r = evaluate(model=m.outputs["model"], data=m.outputs["data"])
        with If(r.outputs["promoted"] == True):  # noqa: E712
            announce(uri=r.outputs["model_uri"])

    doc = yaml.safe_load(compile_to_text(gated).split("\n---\n")[0])
    condition = doc["root"]["dag"]["tasks"]["condition-1"]["triggerPolicy"]["condition"]
    assert "evaluate-promoted" in condition
    program = _program(doc, "exec-evaluate")
    assert "from workbench_dsl.runtime.register import launch" in program
    assert doc["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["image"] == (
        "ghcr.io/workbench-dsl/runtime:0.1.0"
    )


def test_config_carries_gate_approval_and_registry(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        '[registry]\ntracking_uri = "sqlite:////tmp/x.db"\n'
        'cluster_tracking_uri = "http://mlflow.kubeflow:5000"\n',
        encoding="utf-8",
    )
    (tmp_path / "steps.py").write_text(
        textwrap.dedent(
            """
            from workbench_dsl import Input, Model, register

            @register(model="churn", gate={"auc": "> 0.8"}, approval="manual",
                      promote_to="production", approval_timeout="2h", flavor="sklearn")
            def check(model: Input[Model]) -> dict:
                return {"auc": 0.9}
            """
        ),
        encoding="utf-8",
    )
    from workbench_dsl.compile.loader import import_module

    module = import_module(str(tmp_path / "steps.py"))
    from workbench_dsl.backends.lineage.launchers import parse

    launcher = parse(module.check.component.component_spec.implementation.container.command[-1])
    assert launcher is not None and launcher.kind == "register"
    cfg = launcher.config
    assert cfg == {
        "alias": None,
        "approval": "manual",
        "approval_timeout": 7200.0,
        "cluster_tracking_uri": "http://mlflow.kubeflow:5000",
        "flavor": "sklearn",
        "gate": {"auc": "> 0.8"},
        "model": "churn",
        "model_param": "model",
        "promote_to": "production",
        "step": "check",
        "tracking_uri": "sqlite:////tmp/x.db",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"@register\(\) missing required argument 'model'"),
        ({"model": "has space"}, r"model='has space' must be a registered-model name"),
        (
            {"model": "m", "gate": {"accuracy": "about 0.9"}},
            r"gate\['accuracy'\] = 'about 0.9' is not a condition",
        ),
        ({"model": "m", "gate": {"accuracy": 0.9}}, r"gate\['accuracy'\] must be a string"),
        ({"model": "m", "gate": ["accuracy"]}, r"gate must be a dict"),
        ({"model": "m", "alias": "latest"}, r"alias='latest' is not a valid alias"),
        ({"model": "m", "promote_to": "v2"}, r"promote_to='v2' is not a valid alias"),
        (
            {"model": "m", "alias": "prod", "promote_to": "prod"},
            r"alias and promote_to are both 'prod'",
        ),
        ({"model": "m", "approval": "auto"}, r"approval='auto' must be one of 'none', 'manual'"),
        ({"model": "m", "flavor": "onnx"}, r"flavor='onnx' must be one of"),
        ({"model": "m", "approval_timeout": "soon"}, r"approval_timeout='soon' is not a duration"),
        ({"model": "m", "retries": -1}, r"retries must be a whole number"),
        (
            {"model": "m", "approval": "manual", "timeout": "1h"},
            r"timeout='1h' is shorter than approval_timeout='24h': the step would be stopped",
        ),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_step(
    options: dict[str, Any], message: str
) -> None:
    def judge(model: Input[Model]) -> dict:
        return {}

    with pytest.raises(PipelineDefinitionError, match=message) as info:
        register(**options)(judge)
    assert str(info.value).startswith("judge: ")
    assert "\n" not in str(info.value)


def test_the_model_parameter_must_be_an_input_model() -> None:
    @register(model="m")
    def no_model(data: Input[Dataset]) -> dict:
        return {}

    with pytest.raises(
        PipelineDefinitionError, match=r"needs a parameter annotated Input\[Model\]"
    ):
        _ = no_model.component


def test_several_models_need_one_named_model() -> None:
    @register(model="m")
    def two(a: Input[Model], b: Input[Model]) -> dict:
        return {}

    with pytest.raises(PipelineDefinitionError, match="name the one to register 'model'"):
        _ = two.component

    @register(model="m")
    def named(model: Input[Model], baseline: Input[Model]) -> dict:
        return {}

    assert set(named.component.component_spec.inputs) == {"model", "baseline"}


def test_output_names_and_return_type_are_checked() -> None:
    @register(model="m")
    def clash(model: Input[Model], version: str) -> dict:
        return {}

    with pytest.raises(
        PipelineDefinitionError, match="parameter 'version' has the name of an output"
    ):
        _ = clash.component

    @register(model="m")
    def scalar(model: Input[Model]) -> float:
        return 1.0

    with pytest.raises(PipelineDefinitionError, match="must return a dict of metrics"):
        _ = scalar.component
