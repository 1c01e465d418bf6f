"""LLM endpoints on KServe: the Hugging Face runtime's InferenceService, its URL, and what
``endpoints list`` reports for each way of serving (checked at the client's HTTP boundary)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))
from kube_recorder import FakeAPIServer, api_client

from workbench_dsl.backends.deployer import DeployError, DeploySpec, LLMOptions
from workbench_dsl.backends.deployer.kubernetes import (
    KServeDeployer,
    canary_patch,
    inference_service,
)

BASE = "/apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices"
GPU2 = {
    "requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
    "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
}
CHAT = DeploySpec(
    endpoint="chat",
    model_uri="models:/chat/2",
    storage="s3://mlflow/2/abc/artifacts/model",
    flavor="transformers",
    canary_percent=20,
    min_replicas=0,
    max_replicas=2,
    resources=GPU2,
    scale_to_zero_after=120,
    kind="llm",
    llm=LLMOptions(max_model_len=2048, max_batch_size=32, tensor_parallel_size=2, dtype="bfloat16"),
)


def _ready(obj: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {
        **obj,
        "metadata": {**obj["metadata"], "generation": generation},
        "status": {
            "observedGeneration": generation,
            "url": f"http://{obj['metadata']['name']}.models.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
            "components": {
                "predictor": {
                    "latestCreatedRevision": "chat-predictor-00001",
                    "latestReadyRevision": "chat-predictor-00001",
                }
            },
        },
    }


def test_an_llm_runs_in_the_huggingface_runtime_with_vllm_and_its_knobs() -> None:
    body = inference_service(CHAT, "models")
    predictor = body["spec"]["predictor"]
    assert predictor["model"] == {
        "modelFormat": {"name": "huggingface"},
        "protocolVersion": "v2",
        "storageUri": "s3://mlflow/2/abc/artifacts/model",
        "args": [
            "--backend=vllm",
            "--max-model-len=2048",
            "--max-num-seqs=32",
            "--tensor-parallel-size=2",
            "--dtype=bfloat16",
        ],
        "resources": GPU2,
    }
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 2)
    annotations = body["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "120s"
    assert "workbench.dev/protocol" not in annotations
    patch = canary_patch(CHAT)["spec"]["predictor"]
    assert patch["canaryTrafficPercent"] == 20 and patch["containers"] is None
    assert patch["model"]["args"][0] == "--backend=vllm"


def test_without_gpus_the_transformers_backend_gets_only_its_own_flags() -> None:
    cpu = DeploySpec(
        endpoint="tiny",
        model_uri="/models/tiny",
        storage="s3://b/tiny",
        flavor="transformers",
        kind="llm",
        llm=LLMOptions(max_model_len=128, max_batch_size=1, dtype="float16"),
    )
    model = inference_service(cpu, "models")["spec"]["predictor"]["model"]
    assert model["args"] == ["--backend=huggingface", "--max_model_len=128", "--dtype=float16"]
    no_len = DeploySpec(**{**cpu.__dict__, "llm": LLMOptions(max_batch_size=1)})
    assert inference_service(no_len, "m")["spec"]["predictor"]["model"]["args"] == [
        "--backend=huggingface",
        "--dtype=auto",
    ]


def test_deploy_reports_the_openai_route_as_the_url() -> None:
    created = inference_service(CHAT, "models")
    server = FakeAPIServer()
    server.on("GET", f"{BASE}/chat", (404, {"kind": "Status"}), (200, _ready(created)))
    server.on(
        "POST", BASE, (201, {**created, "metadata": {**created["metadata"], "generation": 1}})
    )
    deployer = KServeDeployer("models", api_client=api_client(server), poll_s=0, timeout_s=5)
    result = deployer.deploy(CHAT)
    assert result.url == "http://chat.models.example.com/openai/v1"
    post = [r for r in server.requests if r.method == "POST"]
    assert post[0].body == created and post[0].query == {"fieldValidation": "Strict"}
    info = deployer.get("chat")
    assert (info.protocol, info.url) == ("openai", "http://chat.models.example.com/openai/v1")


@pytest.mark.parametrize(
    ("annotation", "protocol", "route"),
    [
        ("v1", "v1", "/v1/models/scorer:predict"),
        ("v2", "v2", "/v2/models/scorer/infer"),
        (None, "v2", "/v2/models/scorer/infer"),  # made before the annotation: v2 is served
    ],
)
def test_a_custom_container_reports_the_protocol_it_was_deployed_for(
    annotation: str | None, protocol: str, route: str
) -> None:
    spec = DeploySpec(
        endpoint="scorer",
        model_uri="models:/s/1",
        storage="s3://b/s",
        protocol=annotation or "v2",
        predictor_source="def predict(model, instances):\n    return instances\n",
        predictor_name="predict",
    )
    body = inference_service(spec, "models")
    if annotation is None:
        del body["metadata"]["annotations"]["workbench.dev/protocol"]
    else:
        assert body["metadata"]["annotations"]["workbench.dev/protocol"] == annotation
    server = FakeAPIServer().on("GET", f"{BASE}/scorer", (200, _ready(body)))
    deployer = KServeDeployer("models", api_client=api_client(server))
    info = deployer.get("scorer")
    assert (info.protocol, info.url) == (protocol, f"http://scorer.models.example.com{route}")


def test_what_the_runtime_cannot_do_is_refused_before_any_request() -> None:
    server = FakeAPIServer().on("GET", f"{BASE}/tiny", (404, {"kind": "Status"}))
    deployer = KServeDeployer("models", api_client=api_client(server))
    batched_on_cpu = DeploySpec(
        endpoint="tiny",
        model_uri="m",
        storage="s3://b/t",
        kind="llm",
        llm=LLMOptions(max_batch_size=8),
    )
    with pytest.raises(
        DeployError, match=r"max_batch_size=8 needs vLLM, which runs only with GPUs"
    ):
        deployer.deploy(batched_on_cpu)
    assert [r.method for r in server.requests] == ["GET"]
