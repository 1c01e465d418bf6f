"""@serve and the prebuilt deploy: predictor shapes, options, the compiled interface and config."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench_dsl import deploy, pipeline, serve
from workbench_dsl.compile.compiler import compile_to_text
from workbench_dsl.dsl.serve import ServeStep
from workbench_dsl.errors import PipelineDefinitionError
from workbench_dsl.runtime.serve_settings import ServeSettings


@serve(endpoint="churn", canary_percent=20, protocol="v1")
def predict(model, instances):
    """Class probabilities."""
    return model.predict_proba(instances)[:, 1].tolist()


@serve(endpoint="scorer", auth="token")
class Scorer:
    """A predictor with its own loading."""

    def load(self, model_dir):
        self.path = model_dir

    def predict(self, instances):
        return [len(row) for row in instances]


def _launch_config(component: Any) -> dict[str, Any]:
    from workbench_dsl.backends.lineage.launchers import parse

    launcher = parse(component.component_spec.implementation.container.command[-1])
    assert launcher is not None and launcher.kind == "serve"
    return launcher.config


def test_plain_predictors_stay_callable() -> None:
    class Fake:
        def predict_proba(self, x):
            import numpy as np

            return np.array([[0.2, 0.8] for _ in x])

    assert predict.fn(Fake(), [[1, 2]]) == [0.8]
    scorer = Scorer.fn()
    assert scorer.predict([[1, 2, 3]]) == [3]
    assert isinstance(Scorer, ServeStep)
    assert Scorer.name == "Scorer"


def test_interface_is_model_uri_in_url_and_revision_out() -> None:
    for step in (predict, Scorer):
        spec = step.component.component_spec
        assert {k: v.type for k, v in spec.inputs.items()} == {"model_uri": "String"}
        assert {k: v.type for k, v in spec.outputs.items()} == {
            "url": "String",
            "revision": "String",
        }


def test_predictor_source_and_settings_travel_in_the_config() -> None:
    cfg = _launch_config(predict.component)
    assert cfg["endpoint"] == "churn"
    assert cfg["canary_percent"] == 20
    assert cfg["protocol"] == "v1"
    assert cfg["predictor_name"] == "predict"
    assert cfg["predictor_source"].startswith("def predict(model, instances):")
    assert "@serve" not in cfg["predictor_source"]
    cls = _launch_config(Scorer.component)
    assert cls["predictor_source"].startswith("class Scorer:")
    assert cls["auth"] == "token"


def test_profile_is_the_endpoints_compute_not_the_launchers(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        textwrap.dedent(
            """
            [cluster]
            namespace = "models"
            [profiles.gpu-small]
            cpu = "2"
            memory = "8Gi"
            accelerator = "nvidia.com/gpu"
            accelerator_count = 1
            node_selector = { pool = "gpu" }
            tolerations = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "served.py").write_text(
        textwrap.dedent(
            """
            from workbench_dsl import pipeline, serve

            @serve(endpoint="big", profile="gpu-small", min_replicas=0, max_replicas=3)
            def big(model, instances):
                return model.predict(instances)

            @pipeline(name="p")
            def p(uri: str = "models:/m/1"):
                big(model_uri=uri)
            """
        ),
        encoding="utf-8",
    )
    from workbench_dsl.compile.loader import import_module

    module = import_module(str(tmp_path / "served.py"))
    settings = ServeSettings.from_json(_launch_config(module.big.component))
    spec = settings.deploy_spec("models:/m/1", "s3://b/m", "sklearn")
    assert spec.resources == {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }
    assert spec.node_selector == {"pool": "gpu"}
    assert spec.tolerations == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert settings.cluster.namespace == "models"
    assert settings.profile == "gpu-small" and settings.gpus == 1
    assert (spec.min_replicas, spec.max_replicas) == (0, 3)
    doc = yaml.safe_load(compile_to_text(module.p).split("\n---\n")[0])
    resources = doc["deploymentSpec"]["executors"]["exec-big"]["container"]["resources"]
    assert "accelerator" not in resources  # the launcher pod asks for no GPU


def test_prebuilt_deploy_takes_its_settings_as_inputs() -> None:
    spec = deploy.component.component_spec
    assert spec.name == "deploy"
    assert set(spec.inputs) == {
        "model_uri",
        "endpoint",
        "canary_percent",
        "protocol",
        "min_replicas",
        "max_replicas",
        "auth",
        "log_requests",
        "request_log_sample",
        "request_log_max_mb",
        "scale_to_zero_after",
    }
    assert [k for k, v in spec.inputs.items() if not v.optional] == ["model_uri", "endpoint"]
    assert _launch_config(deploy.component)["predictor_source"] is None

    @pipeline(name="d")
    def d(uri: str = "models:/m/1") -> str:
        return deploy(model_uri=uri, endpoint="m", canary_percent=5).outputs["url"]

    assert "comp-deploy" in compile_to_text(d)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"@serve\(\) missing required argument 'endpoint'"),
        ({"endpoint": "Churn_1"}, r"endpoint name 'Churn_1' must be lowercase letters"),
        (
            {"endpoint": "c", "canary_percent": 120},
            r"canary_percent must be a whole number from 0 to 100",
        ),
        ({"endpoint": "c", "canary_percent": 0.5}, r"canary_percent must be a whole number"),
        ({"endpoint": "c", "protocol": "grpc"}, r"protocol='grpc' must be 'v1' or 'v2'"),
        ({"endpoint": "c", "auth": "oauth"}, r"auth='oauth' must be 'none' or 'token'"),
        ({"endpoint": "c", "min_replicas": -1}, r"min_replicas must be a whole number >= 0"),
        (
            {"endpoint": "c", "min_replicas": 3, "max_replicas": 2},
            r"max_replicas=2 must be at least",
        ),
        ({"endpoint": "c", "max_replicas": 0}, r"max_replicas=0 must be at least 1"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, Any], message: str) -> None:
    def answer(model, instances):
        return instances

    with pytest.raises(PipelineDefinitionError, match=message) as info:
        serve(**options)(answer)
    assert f"test_serve_decorator.py:{answer.__code__.co_firstlineno}: answer: " in str(info.value)
    assert "\n" not in str(info.value)


def test_predictor_shapes_are_checked() -> None:
    def one(instances):
        return instances

    with pytest.raises(PipelineDefinitionError, match=r"takes \(model, instances\) \(it takes 1"):
        serve(endpoint="x")(one)

    class NoPredict:
        def load(self, path):
            pass

    with pytest.raises(PipelineDefinitionError, match="needs a predict"):
        serve(endpoint="x")(NoPredict)
