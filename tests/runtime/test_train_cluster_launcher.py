"""The ``@train`` launcher's cluster path: the TrainJob it creates and how outputs come back.

The API server is a recorder at the HTTP boundary; fsspec's in-memory
filesystem stands in for the object store the pods upload to.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import fsspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "trainer"))
from kube_recorder import FakeAPIServer, api_client, pod, pod_list

from workbench_dsl import Dataset, Input, Model, Output, train
from workbench_dsl.backends.trainer.base import TrainingFailed
from workbench_dsl.config import Config, parse_config
from workbench_dsl.dsl._launcher import function_source
from workbench_dsl.runtime._user import load_function
from workbench_dsl.runtime.train import run_on_cluster

JOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/ml/trainjobs"


@train(nodes=2, procs_per_node=4, profile="gpu-1", env={"EPOCHS": "3"}, timeout="2h")
def fit(data: Input[Dataset], lr: float, model: Output[Model]) -> float:
    return lr


TOML = """
[cluster]
namespace = "ml"
artifact_store = "http://minio-service.kubeflow:9000"
artifact_secret = "mlpipeline-minio-artifact"
"""


@pytest.fixture
def memory_store() -> fsspec.AbstractFileSystem:
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    return fs


def _config(tmp_path: Path) -> Config:
    path = tmp_path / "workbench.toml"
    path.write_text(TOML, encoding="utf-8")
    return parse_config(TOML, path)


def test_trainjob_from_the_step_and_outputs_fetched_back(
    tmp_path: Path, memory_store: fsspec.AbstractFileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KFP_POD_NAME", "churn-x-fit")
    monkeypatch.setenv("KFP_POD_UID", "uid-42")
    config = fit.job_config(_config(tmp_path))
    source = function_source(fit.fn)
    fn = load_function(source, "fit")
    data = Dataset(name="data", uri="memory://mlpipeline/run/data")
    model = Model(name="model", uri="memory://mlpipeline/run/model")
    model.custom_path = str(tmp_path / "local" / "model")  # the launcher pod's local copy

    def complete(req: object) -> tuple[int, dict[str, object]]:
        # Rank 0 uploaded its model before the job completed.
        memory_store.pipe("/mlpipeline/run/model", b"weights")
        return 200, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}

    name = "fit-" + __import__("hashlib").sha256(b"uid-42").hexdigest()[:8]
    result_line = 'WORKBENCH_RESULT {"return": 0.5, "metadata": {"model": {"acc": 0.9}}}\n'
    server = (
        FakeAPIServer()
        .on("POST", JOBS, lambda req: (201, req.body))
        .on("GET", f"{JOBS}/{name}", complete)
        .on(
            "GET",
            "/api/v1/namespaces/ml/pods",
            (200, pod_list(pod(f"{name}-node-0-0", 0, "Succeeded"))),
        )
        .on("GET", f"/api/v1/namespaces/ml/pods/{name}-node-0-0/log", (200, result_line))
    )
    value = run_on_cluster(
        fn,
        source,
        "fit",
        config,
        {"data": data, "lr": 0.5, "model": model},
        api_client=api_client(server),
        poll_s=0,
    )

    assert value == 0.5
    assert Path(model.path).read_bytes() == b"weights"
    assert model.metadata == {"acc": 0.9}
    body = server.requests[0].body
    assert body["metadata"]["name"] == name
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-42"
    trainer = body["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 4
    assert trainer["image"] == "ghcr.io/workbench-dsl/runtime:0.1.0"
    # gpu-1: 4 CPU, 24 GiB, one GPU per node, scheduled with its toleration.
    assert trainer["resourcesPerNode"] == {
        "limits": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"},
    }
    assert body["spec"]["activeDeadlineSeconds"] == 7200
    env = {e["name"]: e for e in trainer["env"]}
    assert env["EPOCHS"]["value"] == "3"
    assert env["WORKBENCH_ARTIFACT_ENDPOINT"]["value"] == "http://minio-service.kubeflow:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlpipeline-minio-artifact",
        "key": "accesskey",
    }
    inv = json.loads(env["WORKBENCH_INVOCATION_JSON"]["value"])
    assert inv["name"] == "fit" and inv["params"] == {"lr": 0.5}
    assert inv["launcher"] == "torchrun"
    assert inv["artifacts"] == {
        "data": {
            "type": "system.Dataset",
            "name": "data",
            "uri": "memory://mlpipeline/run/data",
            "metadata": {},
            "output": False,
        },
        "model": {
            "type": "system.Model",
            "name": "model",
            "uri": "memory://mlpipeline/run/model",
            "metadata": {},
            "output": True,
        },
    }
    patch = body["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    pod_patch = patch["replicatedJobs"][0]["template"]["spec"]["template"]
    assert pod_patch["metadata"]["labels"]["workbench.dev/profile"] == "gpu-1"
    assert pod_patch["metadata"]["annotations"] == {"workbench.dev/cost-per-hour": "1.1"}
    assert pod_patch["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_no_result_line_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_POD_UID", "uid-1")
    config = fit.job_config(_config(tmp_path))
    source = function_source(fit.fn)
    name = "fit-" + __import__("hashlib").sha256(b"uid-1").hexdigest()[:8]
    server = (
        FakeAPIServer()
        .on("POST", JOBS, (201, {}))
        .on(
            "GET",
            f"{JOBS}/{name}",
            (200, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        )
        .on("GET", "/api/v1/namespaces/ml/pods", (200, pod_list()))
    )
    with pytest.raises(TrainingFailed, match="printed no result line"):
        run_on_cluster(
            load_function(source, "fit"),
            source,
            "fit",
            config,
            {"lr": 1.0},
            api_client=api_client(server),
            poll_s=0,
        )
