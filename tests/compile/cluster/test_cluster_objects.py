"""Every object the decorators can make a run create is accepted by the control planes we support.

Objects are built through the public API (decorators -> compiled launcher ->
the launchers' own builders, as ``workbench plan`` renders them) over the
decorators' option space, and checked against the vendored CRD schemas
(KServe 0.17 and 0.20-0.21, Trainer 2.2 and 2.3, Katib 0.19, batch/v1 Job)
and the ported admission rules. The checkers are shown able to fail on what
upstream refuses.
"""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl import serve, space, sweep, train
from workbench_dsl.compile.cluster import check_object, check_patch
from workbench_dsl.compile.cluster.crds import SCHEMAS, check_schema, load
from workbench_dsl.compile.loader import import_module
from workbench_dsl.errors import PipelineDefinitionError
from workbench_dsl.runtime.plan import plan_serve, plan_sweep, plan_train

TOML = """
[cluster]
namespace = "ml"
artifact_store = "http://minio.ml:9000"
artifact_secret = "minio-creds"
kserve_deployment_mode = "{mode}"

[profiles.gpu-pool]
cpu = "8"
memory = "32Gi"
cpu_limit = "8"
memory_limit = "32Gi"
accelerator = "nvidia.com/gpu"
accelerator_count = 4
node_selector = {{ "cloud.google.com/gke-accelerator" = "nvidia-l4" }}
tolerations = [
  {{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }},
  {{ key = "dedicated", operator = "Equal", value = "ml", effect = "NoExecute" }},
]
cost_per_hour = 3.5
"""
MODULE = """
from workbench_dsl import Dataset, Input, Model, Output


def fit(data: Input[Dataset], lr: float, model: Output[Model]) -> float:
    return lr


def trial(data: Input[Dataset], x: float, y: float, lr: float, depth: int, kind: str,
          width: int, epochs: int = 3) -> dict:
    return {"acc": x, "loss": y}


def trial_model(x: float, y: float, model: Output[Model]) -> dict:
    return {"acc": x}


def predict(model, instances):
    return instances


class Scorer:
    def load(self, model_dir):
        self.dir = model_dir

    def predict(self, instances):
        return instances
"""
PROFILES = ("cpu-small", "cpu-large", "gpu-1", "gpu-pool")


def _project(tmp_path: Path, mode: str = "Knative") -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "workbench.toml").write_text(TOML.format(mode=mode), encoding="utf-8")
    (tmp_path / "steps.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    return import_module(str(tmp_path / "steps.py"))


def _config(step: Any) -> dict[str, Any]:
    from workbench_dsl.backends.lineage.launchers import parse

    launcher = parse(step.component.component_spec.implementation.container.command[-1])
    assert launcher is not None
    return launcher.config


def _accepted(obj: Any) -> list[str]:
    found = list(obj.problems)
    found += check_patch(obj.base, obj.body) if obj.base is not None else check_object(obj.body)
    return found


# -- the vendored schemas ------------------------------------------------------------------


def test_every_vendored_schema_records_where_it_came_from() -> None:
    names = {name for versions in SCHEMAS.values() for _, name in versions}
    names |= {"trainer-2.1.0-trainjob"}
    folder = Path(__file__).resolve().parents[3] / "workbench_dsl/compile/cluster/schemas"
    assert names == {p.stem for p in folder.glob("*.json")}
    for name in names:
        source = load(name)["source"]
        assert source["repo"].startswith("https://github.com/")
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), name
        assert source["licence"] == "Apache-2.0" and source["path"] and source["ref"]


# -- the validator honours the structural-schema rules ------------------------------------


SCHEMA = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "count": {"type": "integer", "format": "int32", "minimum": 0},
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"n": {"type": "integer"}},
                },
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "envs": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
                "inner": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "mode": {"type": "string", "enum": ["a", "b"]},
            },
        }
    },
}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"port": 8080, "count": 1, "free": {"anything": [1]}, "labels": {"a": "b"}}, None),
        ({"port": "http"}, None),
        ({"port": 1.5}, "spec.port: must be an integer or a string"),
        ({"count": True}, "spec.count: must be an integer (got boolean)"),
        ({"count": "1"}, "spec.count: must be an integer (got string)"),
        ({"count": 2**31}, "out of range for int32"),
        ({"count": -1}, "must be at least 0"),
        ({"bogus": 1}, "spec.bogus: unknown field"),
        ({"free": {"n": "x"}}, "spec.free.n: must be an integer"),
        ({"tags": ["a", "a"]}, "items of a set must be unique"),
        ({"envs": [{"name": "A"}, {"name": "A", "value": "x"}]}, "unique by name"),
        ({"envs": [{"value": "x"}]}, "spec.envs[0].name: required"),
        ({"inner": {"spec": {}}}, "spec.inner.apiVersion: an embedded resource needs it"),
        (
            {"inner": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}},
            None,
        ),
        ({"labels": {"a": 1}}, "spec.labels.a: must be a string"),
        ({"mode": "c"}, "'c' is not one of 'a', 'b'"),
        ({"count": None}, None),  # null: pruned by the API server
    ],
)
def test_the_validator_is_strict_and_honours_the_kubernetes_extensions(
    spec: dict[str, Any], problem: str | None
) -> None:
    from workbench_dsl.compile.cluster.openapi import validate

    found = validate({"spec": spec}, SCHEMA)
    if problem is None:
        assert found == []
    else:
        assert any(problem in f for f in found), found
    assert validate({}, SCHEMA) == ["spec: required"]


# -- @train: nodes x GPUs x profile ---------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_every_trainjob_is_accepted(tmp_path: Path, profile: str) -> None:
    mod = _project(tmp_path)
    for nodes, procs, timeout, env in itertools.product(
        (1, 2, 8), (1, 4), (None, "2h"), (None, {"NCCL_DEBUG": "INFO"})
    ):
        step = train(nodes=nodes, procs_per_node=procs, profile=profile, timeout=timeout, env=env)(
            mod.fit
        )
        obj = plan_train("fit", _config(step))
        assert _accepted(obj) == [], (nodes, procs, profile, timeout)
        trainer = obj.body["spec"]["trainer"]
        assert (trainer["numNodes"], trainer["numProcPerNode"]) == (nodes, procs)
        if profile in ("gpu-1", "gpu-pool"):
            gpus = trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"]
            assert gpus == ("1" if profile == "gpu-1" else "4")


def test_a_trainer_older_than_2_2_refuses_runtime_patches(tmp_path: Path) -> None:
    mod = _project(tmp_path)
    obj = plan_train("fit", _config(train(profile="gpu-pool")(mod.fit)))
    assert check_schema(obj.body, "trainer-2.3.0-trainjob") == []
    assert check_schema(obj.body, "trainer-2.1.0-trainjob") == [
        "spec.runtimePatches: unknown field"
    ]


def test_trainer_rules_refuse_what_its_webhook_refuses(tmp_path: Path) -> None:
    mod = _project(tmp_path)
    body = plan_train("fit", _config(train(mod.fit))).body
    body["metadata"]["name"] = "Fit_1"
    body["spec"]["trainer"]["env"].append({"name": "PET_NNODES", "value": "3"})
    found = check_object(body)
    assert "metadata.name must match RFC 1035 DNS label format" in found
    assert any("reserved envs ['PET_NNODES']" in f for f in found)


# -- @sweep: algorithm x space shape x parallelism ------------------------------------------

SHAPES: dict[str, dict[str, Any]] = {
    "one-float": {"x": space.uniform(0, 1)},
    "two-floats": {"x": space.uniform(-1, 1), "y": space.uniform(0, 2, step=0.5)},
    "log-and-int": {"lr": space.loguniform(1e-4, 1e-1), "depth": space.integer(2, 8)},
    "log-only": {"lr": space.loguniform(1e-4, 1e-1), "y": space.loguniform(1e-3, 1.0)},
    "int-step-log": {
        "depth": space.integer(2, 10, step=2),
        "width": space.integer(1, 64, log=True),
    },
    "categorical": {"kind": space.categorical(["a", "b", "c"]), "x": space.uniform(0, 1)},
    "grid": {"width": space.grid([16, 32, 64]), "kind": space.grid(["a", "b"])},
    # Steps whose last point float arithmetic puts past `high`: Katib's grid drops it.
    "edge-step": {"x": space.uniform(4.0, 41.68, step=1.57)},
    "edge-steps": {
        "x": space.uniform(4.0, 41.68, step=1.57),
        "y": space.uniform(-4.0, -2.2, step=0.06),
    },
    "mixed": {
        "x": space.uniform(0, 1, step=0.25),
        "depth": space.integer(1, 3),
        "kind": space.categorical(["a", "b"]),
    },
}
ALGORITHMS = ("random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization")
COUNTS = ((1, 2), (3, 4), (20, 4), (5, 1), (50, 10))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_experiment_the_decorator_accepts_is_accepted_by_katib(
    tmp_path: Path, algorithm: str
) -> None:
    mod = _project(tmp_path)
    accepted = 0
    for (shape, space_), (most, parallel), extra in itertools.product(
        SHAPES.items(),
        COUNTS,
        (
            {},
            {"early_stopping": "medianstop", "seed": 7, "metrics": ["loss"]},
            {"max_failed_trials": 30, "profile": "gpu-pool", "goal": "minimize"},
        ),
    ):
        try:
            step = sweep(
                space=space_,
                objective="acc",
                algorithm=algorithm,
                max_trials=most,
                parallel_trials=parallel,
                **extra,
            )(mod.trial)
        except PipelineDefinitionError:
            continue  # refused where written, with file:line (tests/dsl/test_cluster_refusals.py)
        obj = plan_sweep("trial", _config(step))
        assert _accepted(obj) == [], (algorithm, shape, most, parallel, extra)
        accepted += 1
    assert accepted > 0


def test_a_swept_train_step_runs_trainjob_trials_katib_accepts(tmp_path: Path) -> None:
    mod = _project(tmp_path)
    for nodes, profile in itertools.product((1, 2), PROFILES):
        fit = train(nodes=nodes, procs_per_node=2, profile=profile)(mod.trial_model)
        step = sweep(
            space={"x": space.uniform(0, 1), "y": space.uniform(0, 1)},
            objective="acc",
            algorithm="cmaes",
            max_trials=4,
            parallel_trials=8,
        )(fit)
        obj = plan_sweep("trial_model", _config(step))
        assert obj.body["spec"]["trialTemplate"]["trialSpec"]["kind"] == "TrainJob"
        assert obj.body["spec"]["parallelTrialCount"] == 4
        assert _accepted(obj) == [], (nodes, profile)


def test_katib_rules_refuse_what_its_webhook_and_services_refuse(tmp_path: Path) -> None:
    mod = _project(tmp_path)
    good = plan_sweep(
        "trial", _config(sweep(space=SHAPES["one-float"], objective="acc")(mod.trial))
    ).body
    spec = good["spec"]

    def refused(change: dict[str, Any], words: str) -> None:
        body = json.loads(json.dumps(good))
        body["spec"].update(change)
        found = check_object(body)
        assert any(words in f for f in found), (change, found)

    refused({"parallelTrialCount": 4, "maxTrialCount": 3}, "should be less than or equal")
    refused({"maxFailedTrialCount": 30}, "should be less than or equal")
    refused({"algorithm": {"algorithmName": "cmaes"}}, "two or more dimensional")
    refused({"algorithm": {"algorithmName": "hyperopt"}}, "has no suggestion service")
    refused(
        {"objective": {**spec["objective"], "objectiveMetricName": "val.acc"}},
        "never collected",
    )
    refused(
        {"objective": {**spec["objective"], "additionalMetricNames": ["acc"]}},
        "should not contain",
    )
    refused(
        {
            "algorithm": {
                "algorithmName": "tpe",
                "algorithmSettings": [{"name": "seed", "value": "1"}],
            }
        },
        "unknown setting 'seed'",
    )
    refused({"bogusField": 1}, "spec.bogusField: unknown field")
    refused(
        {
            "earlyStopping": {
                "algorithmName": "medianstop",
                "algorithmSettings": [{"name": "min_trials_required", "value": "0"}],
            }
        },
        "min_trials_required must be a whole number >= 1",
    )
    template = json.loads(json.dumps(spec["trialTemplate"]))
    template["trialParameters"] = template["trialParameters"][1:]
    refused({"trialTemplate": template}, "not in spec.trialTemplate.trialParameters")
    grid = {
        "algorithm": {"algorithmName": "grid"},
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
    }
    refused(grid, "step is nil")


# -- @serve: predictor x protocol x canary x replicas x profile x mode x flavor ------------


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_every_inferenceservice_and_canary_patch_is_accepted(tmp_path: Path, mode: str) -> None:
    mod = _project(tmp_path, mode)
    checked = 0
    for target, protocol, percent, (low, high), profile in itertools.product(
        (mod.predict, mod.Scorer),
        ("v1", "v2"),
        (0, 10, 100),
        ((0, 3), (1, 1), (2, 5)),
        PROFILES,
    ):
        step = serve(
            endpoint="churn-model",
            protocol=protocol,
            canary_percent=percent,
            min_replicas=low,
            max_replicas=high,
            profile=profile,
        )(target)
        try:
            cfg = _config(step)
        except PipelineDefinitionError:
            assert mode == "Standard" and (percent < 100 or low == 0)
            continue
        for obj in plan_serve("predict", cfg, {"model_uri": "models:/churn/3"}):
            assert _accepted(obj) == [], (target, protocol, percent, low, profile)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("flavor", ["sklearn", "pytorch", "pyfunc", "xgboost"])
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_prebuilt_deploy_of_every_flavor_is_accepted(
    tmp_path: Path, flavor: str, protocol: str
) -> None:
    from workbench_dsl import deploy

    cfg = _config(deploy)
    inputs = {"endpoint": "churn", "protocol": protocol, "canary_percent": 25, "max_replicas": 2}
    created, patch = plan_serve("deploy", cfg, inputs, flavor=flavor)
    assert _accepted(created) == [] and _accepted(patch) == []
    predictor = created.body["spec"]["predictor"]
    if "model" in predictor:
        assert "name" not in predictor["model"]
        # MLServer, the mlflow format's runtime, speaks v2 only.
        assert protocol == "v2" or predictor["model"]["modelFormat"]["name"] == "sklearn"


def test_kserve_rules_refuse_what_its_webhook_refuses(tmp_path: Path) -> None:
    from workbench_dsl import deploy

    created, _ = plan_serve("deploy", _config(deploy), {"endpoint": "churn"}, flavor="sklearn")
    body = json.loads(json.dumps(created.body))
    body["spec"]["predictor"]["model"]["name"] = "kserve-container"
    assert "spec.predictor.model.name: the 'name' field is not allowed in standard predictor" in (
        check_object(body)
    )
    body = json.loads(json.dumps(created.body))
    body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Standard"
    body["spec"]["predictor"]["canaryTrafficPercent"] = 10
    assert any("needs the Knative deployment mode" in f for f in check_object(body))
    body["spec"]["predictor"]["model"]["storageUri"] = 7
    assert any("storageUri: must be a string" in f for f in check_object(body))
    token, _ = plan_serve("deploy", _config(deploy), {"endpoint": "churn", "auth": "token"})
    assert any("auth='token'" in p for p in token.problems)
