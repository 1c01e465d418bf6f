"""The Katib Experiment: its exact manifest (golden), and create/watch/read-back at the HTTP boundary."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))
from kube_recorder import FakeAPIServer, api_client

from workbench_dsl.backends.sweeper.base import Param, SweepFailed, SweepSettings
from workbench_dsl.backends.sweeper.kubernetes import (
    KatibSweeper,
    TrialTemplate,
    build_experiment,
    job_trial,
    parameter_spec,
    placeholder,
    trainjob_trial,
)
from workbench_dsl.backends.trainer._process import Terminated
from workbench_dsl.backends.trainer.base import (
    Resources,
    SecretEnv,
    Toleration,
    TrainJobSpec,
)

GOLDEN = Path(__file__).parent / "golden"
EXPERIMENTS = "/apis/kubeflow.org/v1beta1/namespaces/ml/experiments"
TRIALS = "/apis/kubeflow.org/v1beta1/namespaces/ml/trials"


def check_golden(name: str, data: object) -> None:
    path = GOLDEN / name
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if os.environ.get("WORKBENCH_REGEN_GOLDEN") == "1":
        if os.environ.get("CI"):
            pytest.fail("golden files are never regenerated in CI")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run `make golden` on purpose"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; review and `make golden`"


def settings(**overrides: Any) -> SweepSettings:
    config: dict[str, Any] = {
        "objective": "accuracy",
        "goal": "maximize",
        "algorithm": "tpe",
        "space": {
            "depth": {"type": "integer", "low": 2, "high": 8, "step": 1, "log": False},
            "lr": {"type": "loguniform", "low": 0.0001, "high": 0.1},
            "momentum": {"type": "uniform", "low": 0.5, "high": 0.9, "step": 0.1},
            "optimizer": {"type": "categorical", "values": ["adam", "sgd"]},
            "width": {"type": "grid", "values": [64, 128, 256]},
        },
        "max_trials": 40,
        "parallel_trials": 4,
        "max_failed_trials": 3,
        "early_stopping": {
            "algorithm": "medianstop",
            "settings": {"min_trials_required": 3, "start_step": 4},
        },
        "seed": 42,
    }
    config.update(overrides)
    return SweepSettings.from_json(config)


def trial_env(s: SweepSettings) -> dict[str, str]:
    env = {
        "WORKBENCH_INVOCATION_JSON": '{"name":"trial"}',
        "WORKBENCH_TRIAL_NAME": placeholder("trialName"),
    }
    env.update({f"WORKBENCH_TRIAL_PARAM_{p.name}": placeholder(p.name) for p in s.params})
    return env


def test_experiment_with_job_trials_golden() -> None:
    s = settings()
    spec = TrainJobSpec(
        name="trial",
        module="workbench_dsl.runtime._pod",
        env=trial_env(s),
        image="ghcr.io/workbench-dsl/runtime:0.1.0",
        resources=Resources(cpu="1", memory="2Gi"),
        labels={"workbench.dev/profile": "cpu-small"},
        annotations={"workbench.dev/cost-per-hour": "0.05"},
        secret_env=(SecretEnv("AWS_ACCESS_KEY_ID", "mlpipeline-minio-artifact", "accesskey"),),
    )
    body = build_experiment(
        s,
        job_trial(spec),
        name="trial-5e1b2c3d",
        namespace="ml",
        step="trial",
        owner={"name": "churn-x-trial", "uid": "u-9"},
    )
    check_golden("experiment_job.json", body)


def test_experiment_with_trainjob_trials_golden() -> None:
    s = settings(algorithm="random", early_stopping=None, max_failed_trials=None, seed=None)
    spec = TrainJobSpec(
        name="fit",
        module="workbench_dsl.runtime._pod",
        nodes=2,
        procs_per_node=1,
        env=trial_env(s),
        image="ghcr.io/workbench-dsl/runtime:0.1.0",
        resources=Resources(
            cpu="4", memory="24Gi", accelerator="nvidia.com/gpu", accelerator_count=1
        ),
        tolerations=(Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule"),),
    )
    body = build_experiment(
        s, trainjob_trial(spec), name="fit-77aa00bb", namespace="ml", step="fit"
    )
    check_golden("experiment_trainjob.json", body)


def test_parameter_types_follow_katib() -> None:
    by_name = {p.name: parameter_spec(p).to_dict() for p in settings().params}
    assert by_name["lr"] == {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
    }
    assert by_name["depth"]["parameterType"] == "int"
    assert by_name["optimizer"] == {
        "name": "optimizer",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["adam", "sgd"]},
    }
    # Numbers to pick from are Katib's "discrete"; the list holds them as text.
    assert by_name["width"] == {
        "name": "width",
        "parameterType": "discrete",
        "feasibleSpace": {"list": ["64", "128", "256"]},
    }
    assert by_name["momentum"]["feasibleSpace"]["step"] == "0.1"


def _trial(name: str, created: str, state: str, acc: float | None, **params: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "startTime": "2026-01-01T10:00:00Z",
        "completionTime": "2026-01-01T10:01:30Z",
        "conditions": [
            {"type": state, "status": "True", "reason": f"Trial{state}", "message": "oom"}
        ],
    }
    if acc is not None:
        status["observation"] = {
            "metrics": [{"name": "accuracy", "latest": str(acc), "max": str(acc), "min": "0.1"}]
        }
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"parameterAssignments": [{"name": k, "value": v} for k, v in params.items()]},
        "status": status,
    }


def _sweeper(server: FakeAPIServer, out: io.StringIO, **kw: Any) -> KatibSweeper:
    return KatibSweeper(api_client=api_client(server), namespace="ml", poll_s=0, out=out, **kw)


TEMPLATE = TrialTemplate(
    trial_spec={"apiVersion": "batch/v1", "kind": "Job"}, primary_container="trial"
)


def test_run_follows_the_experiment_and_reads_back_every_trial() -> None:
    s = settings(
        space={
            "lr": {"type": "loguniform", "low": 0.001, "high": 0.1},
            "optimizer": {"type": "categorical", "values": ["adam", "sgd"]},
        },
        max_trials=3,
    )
    running = {
        "status": {
            "trialsRunning": 2,
            "trialsSucceeded": 1,
            "currentOptimalTrial": {
                "bestTrialName": "t-a",
                "observation": {"metrics": [{"name": "accuracy", "latest": "0.8"}]},
            },
        }
    }
    done = {
        "status": {
            "trialsSucceeded": 2,
            "trialsEarlyStopped": 1,
            "conditions": [
                {"type": "Succeeded", "status": "True", "reason": "ExperimentMaxTrialsReached"}
            ],
            "currentOptimalTrial": {
                "bestTrialName": "t-b",
                "parameterAssignments": [
                    {"name": "lr", "value": "0.01"},
                    {"name": "optimizer", "value": "sgd"},
                ],
                "observation": {"metrics": [{"name": "accuracy", "latest": "0.93"}]},
            },
        }
    }
    trials = {
        "items": [
            _trial("t-c", "2026-01-01T10:00:02Z", "EarlyStopped", 0.5, lr="0.05", optimizer="adam"),
            _trial("t-a", "2026-01-01T10:00:00Z", "Succeeded", 0.8, lr="0.002", optimizer="adam"),
            _trial("t-b", "2026-01-01T10:00:01Z", "Succeeded", 0.93, lr="0.01", optimizer="sgd"),
        ]
    }
    server = (
        FakeAPIServer()
        .on("POST", EXPERIMENTS, lambda req: (201, req.body))
        .on("GET", f"{EXPERIMENTS}/exp-1", (200, running), (200, done))
        .on("GET", TRIALS, (200, trials))
    )
    out = io.StringIO()
    statuses: list[str] = []
    result = _sweeper(server, out, status=statuses.append).run(
        s, TEMPLATE, name="exp-1", step="trial", owner=None
    )
    assert server.paths() == [
        f"POST {EXPERIMENTS}",
        f"GET {EXPERIMENTS}/exp-1",
        f"GET {EXPERIMENTS}/exp-1",
        f"GET {TRIALS}",
    ]
    assert server.requests[0].body == build_experiment(
        s, TEMPLATE, name="exp-1", namespace="ml", step="trial"
    )
    assert server.requests[0].query == {"fieldValidation": "Strict"}
    assert server.requests[3].query == {"labelSelector": "katib.kubeflow.org/experiment=exp-1"}
    assert [t.name for t in result.trials] == ["t-a", "t-b", "t-c"]
    assert [t.state for t in result.trials] == ["succeeded", "succeeded", "pruned"]
    assert result.best.name == "t-b" and result.best.value == 0.93
    assert result.best.params == {"lr": 0.01, "optimizer": "sgd"}
    assert result.trials[0].duration_s == 90.0
    assert statuses == ["trial 1/3, best accuracy 0.8 (2 running)", "trial 3/3, best accuracy 0.93"]


def test_failed_experiment_fails_the_sweep_with_its_reason() -> None:
    failed = {
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "ExperimentMaxFailedTrialsReached",
                    "message": "Experiment has exceeded maximum allowed failed trials",
                }
            ]
        }
    }
    server = (
        FakeAPIServer()
        .on("POST", EXPERIMENTS, (201, {}))
        .on("GET", f"{EXPERIMENTS}/exp-1", (200, failed))
    )
    with pytest.raises(SweepFailed) as info:
        _sweeper(server, io.StringIO()).run(settings(), TEMPLATE, name="exp-1", step="trial")
    assert str(info.value) == (
        "Katib Experiment ml/exp-1 failed: ExperimentMaxFailedTrialsReached: "
        "Experiment has exceeded maximum allowed failed trials"
    )


def test_an_existing_experiment_is_followed_and_a_refused_one_names_the_reason() -> None:
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "R"}]}}
    server = (
        FakeAPIServer()
        .on("POST", EXPERIMENTS, (409, {"kind": "Status", "reason": "AlreadyExists"}))
        .on("GET", f"{EXPERIMENTS}/exp-1", (200, failed))
    )
    out = io.StringIO()
    with pytest.raises(SweepFailed, match=r"^Katib Experiment ml/exp-1 failed: R$"):
        _sweeper(server, out).run(settings(), TEMPLATE, name="exp-1", step="trial")
    assert "Katib Experiment ml/exp-1 exists already: following it" in out.getvalue()

    forbidden = {"kind": "Status", "message": 'experiments.kubeflow.org "exp-1" is forbidden'}
    server = FakeAPIServer().on("POST", EXPERIMENTS, (403, forbidden))
    with pytest.raises(SweepFailed) as info:
        _sweeper(server, io.StringIO()).run(settings(), TEMPLATE, name="exp-1", step="trial")
    assert str(info.value) == (
        'could not create Katib Experiment ml/exp-1: experiments.kubeflow.org "exp-1" is forbidden'
    )
    assert server.paths() == [f"POST {EXPERIMENTS}"]


def test_cancelled_sweep_deletes_its_experiment() -> None:
    def cancel(req: object) -> tuple[int, object]:
        raise Terminated("signal 15")

    server = (
        FakeAPIServer()
        .on("POST", EXPERIMENTS, (201, {}))
        .on("GET", f"{EXPERIMENTS}/exp-1", cancel)
        .on("DELETE", f"{EXPERIMENTS}/exp-1", (200, {}))
    )
    with pytest.raises(Terminated):
        _sweeper(server, io.StringIO()).run(settings(), TEMPLATE, name="exp-1", step="trial")
    assert server.paths()[-1] == f"DELETE {EXPERIMENTS}/exp-1"
    assert server.requests[-1].body == {"propagationPolicy": "Background"}


def test_counts_katib_would_refuse_are_bounded_by_the_trials_that_run() -> None:
    # Katib's webhook: parallelTrialCount and maxFailedTrialCount <= maxTrialCount
    # (kubeflow/katib pkg/webhook/v1beta1/experiment/validator/validator.go).
    grid = SweepSettings(
        objective="acc",
        goal="maximize",
        algorithm="grid",
        params=(Param("k", "grid", values=(1, 2, 3)),),
        max_trials=20,
        parallel_trials=4,
        max_failed_trials=10,
    )
    spec = build_experiment(grid, TEMPLATE, name="e", namespace="ml", step="s")["spec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"], spec["maxFailedTrialCount"]) == (
        3,
        3,
        3,
    )
    one = SweepSettings(
        objective="acc",
        goal="maximize",
        algorithm="tpe",
        params=(Param("x", "uniform", low=0, high=1),),
        max_trials=1,
        parallel_trials=2,
        metrics=("loss", "acc"),
    )
    spec = build_experiment(one, TEMPLATE, name="e", namespace="ml", step="s")["spec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (1, 1)
    # Every recorded metric is declared, so Katib collects what a local run records.
    assert spec["objective"]["additionalMetricNames"] == ["loss"]
    assert one.recorded({"acc": 1.0, "loss": 0.1, "other": 3}) == {"acc": 1.0, "loss": 0.1}
