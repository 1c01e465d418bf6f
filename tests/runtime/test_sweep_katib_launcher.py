"""The ``@sweep`` launcher's cluster path: the Katib trial template it builds and the outputs it writes."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import fsspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "trainer"))
from kube_recorder import FakeAPIServer, api_client

from workbench_dsl import Dataset, Input, Model, Output, space, sweep, train
from workbench_dsl.config import Config
from workbench_dsl.dsl._launcher import function_source
from workbench_dsl.runtime._katib import run_on_katib
from workbench_dsl.runtime._user import load_function
from workbench_dsl.runtime.settings import SweepStepSettings
from workbench_dsl.runtime.sweep import write_trials

EXPERIMENTS = "/apis/kubeflow.org/v1beta1/namespaces/default/experiments"
TRIALS = "/apis/kubeflow.org/v1beta1/namespaces/default/trials"


@sweep(
    space={"lr": space.loguniform(1e-3, 1e-1), "opt": space.categorical(["adam", "sgd"])},
    objective="acc",
    max_trials=4,
    parallel_trials=2,
    early_stopping="medianstop",
    profile="cpu-large",
)
def trial(data: Input[Dataset], epochs: int, lr: float, opt: str, model: Output[Model]) -> dict:
    return {"acc": lr}


@train(nodes=2, profile="gpu-1")
def fit(lr: float) -> dict:
    return {"loss": lr}


swept_fit = sweep(space={"lr": space.uniform(0.0, 1.0)}, objective="loss", goal="minimize")(fit)


def _config(step: Any, model_param: str | None = None) -> SweepStepSettings:
    """The settings the compiled launcher carries, read back as it reads them at run time."""
    baked = json.loads(json.dumps(step.launch_settings(step.config, model_param).to_json()))
    return SweepStepSettings.from_json(baked)


def _done(best: str) -> dict[str, Any]:
    return {
        "status": {
            "trialsSucceeded": 2,
            "conditions": [{"type": "Succeeded", "status": "True"}],
            "currentOptimalTrial": {"bestTrialName": best},
        }
    }


def _trial(name: str, acc: float, lr: str, opt: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": f"2026-01-01T00:00:0{name[-1]}Z"},
        "spec": {
            "parameterAssignments": [{"name": "lr", "value": lr}, {"name": "opt", "value": opt}]
        },
        "status": {
            "conditions": [{"type": "Succeeded", "status": "True"}],
            "observation": {"metrics": [{"name": "acc", "latest": str(acc)}]},
        },
    }


def test_katib_run_builds_job_trials_and_fetches_the_best_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pipe("/kfp/run/best_model.trials/t-2/model", b"best weights")
    monkeypatch.setenv("KFP_POD_UID", "pod-uid")
    config = _config(trial, "model")
    source = function_source(trial.fn)
    best_model = Model(name="best_model", uri="memory://kfp/run/best_model")
    best_model.custom_path = str(tmp_path / "local" / "best_model")
    data = Dataset(name="data", uri="memory://kfp/run/data")

    import hashlib

    name = "trial-" + hashlib.sha256(b"pod-uid").hexdigest()[:8]
    server = (
        FakeAPIServer()
        .on("POST", EXPERIMENTS, lambda req: (201, req.body))
        .on("GET", f"{EXPERIMENTS}/{name}", (200, _done("t-2")))
        .on(
            "GET",
            TRIALS,
            (
                200,
                {"items": [_trial("t-1", 0.5, "0.01", "adam"), _trial("t-2", 0.9, "0.09", "sgd")]},
            ),
        )
    )
    result = run_on_katib(
        load_function(source, "trial"),
        source,
        "trial",
        config,
        {"data": data, "epochs": 3},
        best_model,
        api_client=api_client(server),
        poll_s=0,
    )
    assert result.best.params == {"lr": 0.09, "opt": "sgd"} and result.best.value == 0.9
    assert Path(best_model.path).read_bytes() == b"best weights"
    assert result.best.model_uri == "memory://kfp/run/best_model.trials/t-2/model"

    exp = server.requests[0].body
    spec = exp["spec"]
    assert spec["earlyStopping"]["algorithmName"] == "medianstop"
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (4, 2)
    job = spec["trialTemplate"]["trialSpec"]
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}  # cpu-large
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WORKBENCH_TRIAL_PARAM_lr"] == "${trialParameters.lr}"
    assert env["WORKBENCH_TRIAL_PARAM_opt"] == "${trialParameters.opt}"
    assert env["WORKBENCH_TRIAL_NAME"] == "${trialParameters.trialName}"
    inv = json.loads(env["WORKBENCH_INVOCATION_JSON"])
    assert inv["params"] == {"epochs": 3}
    assert inv["artifacts"]["data"]["uri"] == "memory://kfp/run/data"
    assert inv["artifacts"]["model"]["output"] is True
    assert inv["trial"] == {
        "params": config.to_json()["space"],
        "staging_uri": "memory://kfp/run/best_model.trials",
    }
    assert inv["launcher"] == "python"

    trials_out = Dataset(name="trials", uri=str(tmp_path / "trials.csv"))
    write_trials(result, config.search, trials_out)
    rows = list(csv.DictReader(Path(trials_out.path).read_text().splitlines()))
    assert [(r["trial"], r["state"], r["acc"], r["params.opt"]) for r in rows] == [
        ("0", "succeeded", "0.5", "adam"),
        ("1", "succeeded", "0.9", "sgd"),
    ]


def test_a_swept_train_step_gets_trainjob_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(swept_fit)
    source = function_source(swept_fit.fn)
    server = (
        FakeAPIServer()
        .on("POST", EXPERIMENTS, lambda req: (201, req.body))
        .on("GET", EXPERIMENTS + "/.*", (200, _done("t-1")))
        .on(
            "GET",
            TRIALS,
            (
                200,
                {
                    "items": [
                        {
                            "metadata": {"name": "t-1"},
                            "spec": {"parameterAssignments": [{"name": "lr", "value": "0.5"}]},
                            "status": {
                                "conditions": [{"type": "Succeeded", "status": "True"}],
                                "observation": {"metrics": [{"name": "loss", "latest": "0.5"}]},
                            },
                        }
                    ]
                },
            ),
        )
    )
    result = run_on_katib(
        load_function(source, "fit"),
        source,
        "fit",
        config,
        {},
        None,
        api_client=api_client(server),
        poll_s=0,
    )
    assert result.best.params == {"lr": 0.5}
    template = server.requests[0].body["spec"]["trialTemplate"]
    assert template["primaryContainerName"] == "node"
    tj = template["trialSpec"]
    assert (tj["apiVersion"], tj["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert tj["spec"]["trainer"]["numNodes"] == 2
    assert tj["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e.get("value") for e in tj["spec"]["trainer"]["env"]}
    assert json.loads(env["WORKBENCH_INVOCATION_JSON"])["launcher"] == "torchrun"
    assert env["WORKBENCH_TRIAL_PARAM_lr"] == "${trialParameters.lr}"
