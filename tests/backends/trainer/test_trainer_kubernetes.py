"""The TrainJob: its exact manifest (golden), and create/watch/fail/cancel against the API's HTTP boundary."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from kube_recorder import FakeAPIServer, api_client, pod, pod_list

from workbench_dsl.backends.trainer._process import Terminated
from workbench_dsl.backends.trainer.base import (
    Resources,
    SecretEnv,
    Toleration,
    TrainingFailed,
    TrainJobSpec,
)
from workbench_dsl.backends.trainer.kubernetes import KubernetesTrainer
from workbench_dsl.backends.trainer.manifest import build_trainjob, resource_name

GOLDEN = Path(__file__).parent / "golden"
JOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs"


def check_golden(name: str, data: object) -> None:
    """Compare ``data`` with ``golden/<name>`` in full (regenerate only on purpose)."""
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


def gpu_spec() -> TrainJobSpec:
    return TrainJobSpec(
        name="fit",
        module="workbench_dsl.runtime._pod",
        nodes=2,
        procs_per_node=4,
        env={"WORKBENCH_INVOCATION_JSON": '{"name":"fit"}', "EPOCHS": "3"},
        timeout=7200,
        runtime="torch-distributed",
        image="ghcr.io/workbench-dsl/runtime:0.1.0",
        resources=Resources(
            cpu="8", memory="64Gi", accelerator="nvidia.com/gpu", accelerator_count=4
        ),
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=(Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule"),),
        labels={"workbench.dev/profile": "gpu-4"},
        annotations={"workbench.dev/cost-per-hour": "4.4"},
        secret_env=(
            SecretEnv("AWS_ACCESS_KEY_ID", "mlpipeline-minio-artifact", "accesskey"),
            SecretEnv("AWS_SECRET_ACCESS_KEY", "mlpipeline-minio-artifact", "secretkey"),
        ),
    )


def test_trainjob_manifest_golden() -> None:
    body = build_trainjob(
        gpu_spec(),
        name="fit-3f2a9c1b",
        namespace="team-a",
        owner={"name": "churn-abc-fit-driver", "uid": "1234-5678"},
    )
    check_golden("trainjob.json", body)


def test_minimal_trainjob_leaves_the_runtime_defaults_alone() -> None:
    body = build_trainjob(TrainJobSpec(name="fit", module="m"), name="fit-1", namespace="default")
    trainer = body["spec"]["trainer"]
    assert trainer == {
        "command": ["python", "-m", "workbench_dsl.runtime._pod"],
        "numNodes": 1,
        "numProcPerNode": 1,
    }
    assert "activeDeadlineSeconds" not in body["spec"]
    assert "ownerReferences" not in body["metadata"]


def test_resource_names_are_dns_labels_and_stable() -> None:
    a = resource_name("Fit_Model", "uid-1")
    assert a == resource_name("Fit_Model", "uid-1")
    assert a.startswith("fit-model-") and len(a) <= 40
    assert resource_name("3d_unet", "x").startswith("s-3d-unet-")
    assert resource_name("x" * 80, "y").count("-") == 1


def _trainer(server: FakeAPIServer, out: io.StringIO) -> KubernetesTrainer:
    return KubernetesTrainer(api_client=api_client(server), namespace="team-a", poll_s=0, out=out)


def _job(*conditions: dict[str, str]) -> tuple[int, dict[str, object]]:
    return 200, {"metadata": {"name": "fit-1"}, "status": {"conditions": list(conditions)}}


RUNNING = _job()
COMPLETE = _job({"type": "Complete", "status": "True", "reason": "JobsCompleted"})
SELECTOR = "jobset.sigs.k8s.io/jobset-name=fit-1,jobset.sigs.k8s.io/replicatedjob-name=node"


def test_run_creates_streams_logs_and_returns_rank0_result() -> None:
    spec = gpu_spec()
    log0 = 'epoch 1 loss 0.5\nWORKBENCH_RESULT {"return": 0.93, "metadata": {}}\n'
    server = (
        FakeAPIServer()
        .on("POST", JOBS, lambda req: (201, req.body))
        .on("GET", f"{JOBS}/fit-1", RUNNING, COMPLETE)
        .on(
            "GET",
            "/api/v1/namespaces/team-a/pods",
            (
                200,
                pod_list(
                    pod("fit-1-node-0-0-a", 0, "Running"), pod("fit-1-node-0-1-b", 1, "Pending")
                ),
            ),
            (
                200,
                pod_list(
                    pod("fit-1-node-0-0-a", 0, "Succeeded"), pod("fit-1-node-0-1-b", 1, "Succeeded")
                ),
            ),
        )
        .on("GET", "/api/v1/namespaces/team-a/pods/fit-1-node-0-0-a/log", (200, log0))
        .on("GET", "/api/v1/namespaces/team-a/pods/fit-1-node-0-1-b/log", (200, "epoch 1\n"))
    )
    out = io.StringIO()
    owner = {"name": "launcher-pod", "uid": "u-1"}
    result = _trainer(server, out).run(spec, name="fit-1", owner=owner)

    assert result == {"return": 0.93, "metadata": {}}
    create = server.requests[0]
    assert (create.method, create.path) == ("POST", JOBS)
    # Strict: an older Trainer refuses spec.runtimePatches instead of dropping it.
    assert create.query == {"fieldValidation": "Strict"}
    assert create.body == build_trainjob(spec, name="fit-1", namespace="team-a", owner=owner)
    # Log streams run in threads: their requests interleave with the polling.
    polling = [p for p in server.paths() if not p.endswith("/log")]
    assert polling == [
        f"POST {JOBS}",
        f"GET {JOBS}/fit-1",
        "GET /api/v1/namespaces/team-a/pods",
        f"GET {JOBS}/fit-1",
        "GET /api/v1/namespaces/team-a/pods",
        "GET /api/v1/namespaces/team-a/pods",
    ]
    logs = [r for r in server.requests if r.path.endswith("/log")]
    assert sorted(r.path for r in logs) == [
        "/api/v1/namespaces/team-a/pods/fit-1-node-0-0-a/log",
        "/api/v1/namespaces/team-a/pods/fit-1-node-0-1-b/log",
    ]
    pods = [r for r in server.requests if r.path.endswith("/pods")]
    assert {r.query["labelSelector"] for r in pods} == {SELECTOR}
    log_req = logs[0]
    assert log_req.query == {"container": "node", "follow": "True"}  # as urllib3 encodes it
    text = out.getvalue()
    assert "created TrainJob team-a/fit-1 (2 x 4)" in text
    assert "[node 0] epoch 1 loss 0.5" in text and "[node 1] epoch 1" in text
    assert "WORKBENCH_RESULT" not in text


def test_failed_trainjob_fails_with_its_condition() -> None:
    failed = _job(
        {
            "type": "Failed",
            "status": "True",
            "reason": "DeadlineExceeded",
            "message": "Job was active longer than specified deadline",
        }
    )
    server = (
        FakeAPIServer()
        .on("POST", JOBS, (201, {}))
        .on("GET", f"{JOBS}/fit-1", failed)
        .on("GET", "/api/v1/namespaces/team-a/pods", (200, pod_list()))
    )
    with pytest.raises(TrainingFailed) as info:
        _trainer(server, io.StringIO()).run(TrainJobSpec(name="fit", module="m"), name="fit-1")
    assert str(info.value) == (
        "TrainJob team-a/fit-1 failed: DeadlineExceeded: "
        "Job was active longer than specified deadline"
    )
    assert "DELETE" not in " ".join(server.paths())  # kept for inspection


def test_existing_trainjob_is_adopted_by_a_restarted_launcher() -> None:
    server = (
        FakeAPIServer()
        .on("POST", JOBS, (409, {"kind": "Status", "reason": "AlreadyExists"}))
        .on("GET", f"{JOBS}/fit-1", COMPLETE)
        .on("GET", "/api/v1/namespaces/team-a/pods", (200, pod_list()))
    )
    out = io.StringIO()
    assert _trainer(server, out).run(TrainJobSpec(name="fit", module="m"), name="fit-1") is None
    assert "exists already" in out.getvalue()


def test_refused_create_names_the_api_servers_reason() -> None:
    forbidden = {
        "kind": "Status",
        "message": 'trainjobs.trainer.kubeflow.org is forbidden: User "system:serviceaccount:'
        'team-a:pipeline-runner" cannot create resource "trainjobs"',
    }
    server = FakeAPIServer().on("POST", JOBS, (403, forbidden))
    with pytest.raises(
        TrainingFailed, match=r"could not create TrainJob team-a/fit-1: .*forbidden"
    ):
        _trainer(server, io.StringIO()).run(TrainJobSpec(name="fit", module="m"), name="fit-1")
    assert server.paths() == [f"POST {JOBS}"]


def test_cancelled_launcher_deletes_its_trainjob() -> None:
    def cancel(req: object) -> tuple[int, object]:
        raise Terminated("signal 15")  # SIGTERM arrives while the launcher waits

    server = (
        FakeAPIServer()
        .on("POST", JOBS, (201, {}))
        .on("GET", f"{JOBS}/fit-1", RUNNING, cancel)
        .on("GET", "/api/v1/namespaces/team-a/pods", (200, pod_list()))
        .on("DELETE", f"{JOBS}/fit-1", (200, {}))
    )
    with pytest.raises(Terminated):
        _trainer(server, io.StringIO()).run(TrainJobSpec(name="fit", module="m"), name="fit-1")
    delete = server.requests[-1]
    assert (delete.method, delete.path) == ("DELETE", f"{JOBS}/fit-1")
    assert delete.body == {"propagationPolicy": "Background"}
