"""The cluster deployer: golden InferenceService manifests, and the create / patch / wait logic
checked at the Kubernetes client's HTTP boundary (a recorder answers as an API server would,
and the tests assert on the exact requests: method, path, content type, body)."""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends.deployer import DeployError, DeploySpec
from workbench_dsl.backends.deployer.kubernetes import (
    KServeDeployer,
    canary_patch,
    inference_service,
)

GOLDEN = Path(__file__).parent / "golden"
BASE = "/apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices"

SKLEARN = DeploySpec(
    endpoint="churn",
    model_uri="models:/churn/3",
    storage="s3://mlflow/1/abc/artifacts/model",
    flavor="sklearn",
    canary_percent=10,
    protocol="v2",
    min_replicas=0,
    max_replicas=3,
    resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
    node_selector={"pool": "serving"},
    tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "serving", "effect": "NoSchedule"}
    ],
)
CUSTOM = DeploySpec(
    endpoint="scorer",
    model_uri="models:/churn/4",
    storage="s3://mlflow/1/def/artifacts/model",
    flavor="pytorch",
    protocol="v1",
    predictor_source="def predict(model, instances):\n    return model(instances)\n",
    predictor_name="predict",
)


def _golden(name: str, value: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get("WORKBENCH_REGEN_GOLDEN") == "1":
        if os.environ.get("CI"):
            pytest.fail("golden files are never regenerated in CI")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run `make golden` on purpose"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_golden_first_deployment_of_a_flavor_model() -> None:
    _golden("isvc_sklearn.json", inference_service(SKLEARN, "models"))


def test_golden_first_deployment_of_a_user_predictor() -> None:
    _golden(
        "isvc_custom_predictor.json",
        inference_service(CUSTOM, "models", image="registry.example/runtime:1"),
    )


def test_golden_canary_patch() -> None:
    _golden("isvc_canary_patch.json", canary_patch(SKLEARN))


def test_flavors_map_to_kserve_model_formats() -> None:
    fmt = lambda s: inference_service(s, "m")["spec"]["predictor"]["model"]["modelFormat"]  # noqa: E731
    assert fmt(SKLEARN) == {"name": "sklearn"}
    for flavor in ("pytorch", "pyfunc"):
        spec = DeploySpec(endpoint="x", model_uri="models:/x/1", storage="s3://b/m", flavor=flavor)
        assert fmt(spec) == {"name": "mlflow"}


class _Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 403: "Forbidden", 404: "Not Found"}.get(
            status, ""
        )
        self.data = json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}

    def getheaders(self) -> dict[str, str]:
        return self.headers

    def getheader(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name.lower(), default)


class Recorder:
    """Stands in for urllib3's pool: records each request, answers from a script."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = deque(answers)
        self.requests: list[tuple[str, str, str | None, Any]] = []

    def request(
        self,
        method: str,
        url: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> _Response:
        path = url.split("://", 1)[1].split("/", 1)[1]
        content_type = (headers or {}).get("Content-Type") if method != "GET" else None
        self.requests.append((method, "/" + path, content_type, json.loads(body) if body else None))
        assert self.answers, f"unexpected request {method} {url}"
        return _Response(*self.answers.popleft())


def _client(recorder: Recorder) -> Any:
    from kubernetes.client import ApiClient, Configuration

    client = ApiClient(Configuration(host="https://k8s.test"))
    client.rest_client.pool_manager = recorder
    return client


def _deployer(recorder: Recorder) -> KServeDeployer:
    return KServeDeployer("models", api_client=_client(recorder), poll_s=0, timeout_s=5)


def _isvc(
    generation: int,
    observed: int,
    *,
    created: str,
    ready: str | None,
    conditions: list[dict[str, Any]],
    percent: int | None = None,
) -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"protocolVersion": "v2"}}
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    return {
        "metadata": {"name": "churn", "namespace": "models", "generation": generation},
        "spec": {"predictor": predictor},
        "status": {
            "observedGeneration": observed,
            "url": "http://churn.models.example.com",
            "conditions": conditions,
            "components": {
                "predictor": {
                    "latestCreatedRevision": created,
                    "latestReadyRevision": ready,
                    "previousRolledoutRevision": "churn-predictor-00001",
                }
            },
        },
    }


READY = [{"type": "Ready", "status": "True"}]
IN_PROGRESS = [{"type": "Ready", "status": "Unknown", "reason": "RevisionMissing"}]


def test_first_deployment_creates_and_waits_until_ready() -> None:
    rec = Recorder(
        (404, {"kind": "Status", "reason": "NotFound"}),
        (201, {"metadata": {"name": "churn", "generation": 1}}),
        (200, _isvc(1, 1, created="churn-predictor-00001", ready=None, conditions=IN_PROGRESS)),
        (
            200,
            _isvc(
                1,
                1,
                created="churn-predictor-00001",
                ready="churn-predictor-00001",
                conditions=READY,
            ),
        ),
    )
    result = _deployer(rec).deploy(SKLEARN)
    assert result.url == "http://churn.models.example.com/v2/models/churn/infer"
    assert (result.revision, result.canary) == ("churn-predictor-00001", False)
    assert rec.requests == [
        ("GET", f"{BASE}/churn", None, None),
        (
            "POST",
            f"{BASE}?fieldValidation=Strict",
            "application/json",
            inference_service(SKLEARN, "models"),
        ),
        ("GET", f"{BASE}/churn", None, None),
        ("GET", f"{BASE}/churn", None, None),
    ]


def test_a_later_deployment_patches_in_a_canary_and_waits_for_the_new_generation() -> None:
    rec = Recorder(
        (
            200,
            _isvc(
                1,
                1,
                created="churn-predictor-00001",
                ready="churn-predictor-00001",
                conditions=READY,
            ),
        ),
        (200, {"metadata": {"name": "churn", "generation": 2}}),
        # Still the old generation: ready, but not the rollout we asked for.
        (
            200,
            _isvc(
                2,
                1,
                created="churn-predictor-00001",
                ready="churn-predictor-00001",
                conditions=READY,
            ),
        ),
        (
            200,
            _isvc(
                2,
                2,
                created="churn-predictor-00002",
                ready="churn-predictor-00001",
                conditions=IN_PROGRESS,
            ),
        ),
        (
            200,
            _isvc(
                2,
                2,
                created="churn-predictor-00002",
                ready="churn-predictor-00002",
                conditions=READY,
                percent=10,
            ),
        ),
    )
    result = _deployer(rec).deploy(SKLEARN)
    assert (result.revision, result.canary) == ("churn-predictor-00002", True)
    method, path, content_type, body = rec.requests[1]
    assert (method, path, content_type) == (
        "PATCH",
        f"{BASE}/churn?fieldValidation=Strict",
        "application/merge-patch+json",
    )
    assert body == canary_patch(SKLEARN)
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert len(rec.requests) == 5


def test_a_revision_that_fails_to_load_fails_the_deploy_with_its_message() -> None:
    failed = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "RevisionFailed",
            "message": 'Revision "churn-predictor-00002" failed with message: Container failed: ModuleNotFoundError: No module named "xgboost".',
        },
    ]
    rec = Recorder(
        (
            200,
            _isvc(
                1,
                1,
                created="churn-predictor-00001",
                ready="churn-predictor-00001",
                conditions=READY,
            ),
        ),
        (200, {"metadata": {"name": "churn", "generation": 2}}),
        (
            200,
            _isvc(
                2,
                2,
                created="churn-predictor-00002",
                ready="churn-predictor-00001",
                conditions=failed,
            ),
        ),
    )
    with pytest.raises(
        DeployError,
        match=r'InferenceService churn: RevisionFailed: .*No module named "xgboost".*; churn-predictor-00001 keeps serving',
    ):
        _deployer(rec).deploy(SKLEARN)
    assert [r[0] for r in rec.requests] == ["GET", "PATCH", "GET"]  # no retry, no further change


def test_promote_and_rollback_are_patches_of_canary_traffic_percent() -> None:
    canary = _isvc(
        2,
        2,
        created="churn-predictor-00002",
        ready="churn-predictor-00002",
        conditions=READY,
        percent=10,
    )
    rec = Recorder(
        (200, canary), (200, canary), (200, canary), (200, canary), (200, canary), (200, canary)
    )
    deployer = _deployer(rec)
    info = deployer.promote("churn")
    assert info.canary == "churn-predictor-00002" and info.canary_percent == 10
    deployer.rollback("churn")
    patches = [(r[0], r[2], r[3]) for r in rec.requests if r[0] == "PATCH"]
    assert patches == [
        (
            "PATCH",
            "application/merge-patch+json",
            {"spec": {"predictor": {"canaryTrafficPercent": None}}},
        ),
        (
            "PATCH",
            "application/merge-patch+json",
            {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
        ),
    ]


def test_api_errors_are_one_line() -> None:
    rec = Recorder(
        (404, {"kind": "Status"}),
        (
            403,
            {
                "kind": "Status",
                "message": 'inferenceservices is forbidden: User "system:serviceaccount:kubeflow:pipeline-runner" cannot create resource',
            },
        ),
    )
    with pytest.raises(
        DeployError,
        match=r"creating InferenceService churn: HTTP 403: inferenceservices is forbidden",
    ):
        _deployer(rec).deploy(SKLEARN)
    with pytest.raises(DeployError, match="no InferenceService churn in namespace models"):
        _deployer(Recorder((404, {}))).promote("churn")


def test_standard_predictors_carry_no_name_and_v1_mlflow_runs_our_server() -> None:
    # KServe's webhook: "the 'name' field is not allowed in standard predictor".
    body = inference_service(SKLEARN, "models")
    assert "name" not in body["spec"]["predictor"]["model"]
    assert "name" not in canary_patch(SKLEARN)["spec"]["predictor"]["model"]
    # MLServer (the mlflow format's runtime) speaks v2 only: v1 gets our own server.
    v1 = DeploySpec(endpoint="x", model_uri="models:/x/1", storage="s3://b/m", protocol="v1")
    predictor = inference_service(v1, "m")["spec"]["predictor"]
    assert "model" not in predictor
    assert predictor["containers"][0]["name"] == "kserve-container"
    sk_v1 = DeploySpec(
        endpoint="x", model_uri="models:/x/1", storage="s3://b/m", flavor="sklearn", protocol="v1"
    )
    assert inference_service(sk_v1, "m")["spec"]["predictor"]["model"]["protocolVersion"] == "v1"


def test_deployment_mode_is_explicit_and_what_it_cannot_do_is_refused_before_any_request() -> None:
    from workbench_dsl.backends.deployer.kubernetes import DEPLOYMENT_MODE_ANNOTATION

    body = inference_service(SKLEARN, "models", deployment_mode="Standard")
    assert body["metadata"]["annotations"][DEPLOYMENT_MODE_ANNOTATION] == "Standard"
    token = DeploySpec(endpoint="t", model_uri="models:/x/1", storage="s3://b/m", auth="token")
    rec = Recorder((404, {"kind": "Status", "code": 404}))
    with pytest.raises(DeployError, match="auth='token'"):
        _deployer(rec).deploy(token)
    assert [r[0] for r in rec.requests] == ["GET"]  # nothing created
    rec = Recorder((404, {"kind": "Status", "code": 404}))
    standard = KServeDeployer("models", api_client=_client(rec), deployment_mode="Standard")
    with pytest.raises(DeployError, match="min_replicas=0"):
        standard.deploy(SKLEARN)
    assert [r[0] for r in rec.requests] == ["GET"]
