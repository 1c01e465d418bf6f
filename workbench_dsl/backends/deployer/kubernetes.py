"""The cluster deployer: a KServe InferenceService per endpoint, canaries by ``canaryTrafficPercent``.

The resource is built with the KServe SDK's models. The first deployment
creates it (all traffic to the first revision); a later one patches the
predictor and sets ``canaryTrafficPercent``, so Knative keeps the previous
revision for the rest. Promote removes ``canaryTrafficPercent`` (the latest
revision takes everything); rollback sets it to 0. After each change the
deployer polls the resource until the new revision is ready or has failed,
and a failure carries the condition's message (a model that does not load
leaves the previous revision serving, as Knative does).
See https://kserve.github.io/website/latest/modelserving/v1beta1/rollout/canary/
"""

from __future__ import annotations

import time
from typing import Any

from workbench_dsl.backends.deployer import DeployError, DeployResult, DeploySpec, EndpointInfo
from workbench_dsl.backends.deployer._kserve_manifest import (
    DEFAULT_DEPLOYMENT_MODE,
    DEPLOYMENT_MODE_ANNOTATION,
    DEPLOYMENT_MODES,
    GROUP,
    MANAGED_BY,
    MODEL_FORMATS,
    MODEL_URI_ANNOTATION,
    PROTOCOL_ANNOTATION,
    SCALE_TO_ZERO_ANNOTATION,
    V1_FORMATS,
    VERSION,
    canary_patch,
    cluster_problems,
    inference_service,
    isvc_annotations,
    model_format,
    predictor_spec,
    uses_workbench_server,
)
from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE

__all__ = [
    "DEFAULT_DEPLOYMENT_MODE",
    "DEPLOYMENT_MODES",
    "DEPLOYMENT_MODE_ANNOTATION",
    "MANAGED_BY",
    "MODEL_FORMATS",
    "MODEL_URI_ANNOTATION",
    "PROTOCOL_ANNOTATION",
    "SCALE_TO_ZERO_ANNOTATION",
    "STRICT",
    "V1_FORMATS",
    "KServeDeployer",
    "canary_patch",
    "cluster_problems",
    "inference_service",
    "isvc_annotations",
    "model_format",
    "predictor_spec",
    "uses_workbench_server",
]

PLURAL = "inferenceservices"
#: Ask the API server to refuse unknown or duplicate fields instead of dropping them.
STRICT = "Strict"  # the same as backends.trainer.manifest.FIELD_VALIDATION
#: Condition reasons that mean the new revision will not become ready by waiting.
_FAILED_REASONS = {"RevisionFailed", "ContainerMissing", "ProgressDeadlineExceeded"}


class KServeDeployer:
    """InferenceServices in one namespace, through a ``kubernetes.client.ApiClient``."""

    def __init__(
        self,
        namespace: str,
        *,
        api_client: Any = None,
        image: str | None = None,
        deployment_mode: str | None = None,
        poll_s: float = 2.0,
        timeout_s: float = 900.0,
    ) -> None:
        self.namespace = namespace
        self._api_client = api_client
        self.image = image or DEFAULT_RUNTIME_IMAGE
        self.deployment_mode = deployment_mode or DEFAULT_DEPLOYMENT_MODE
        self.poll_s = poll_s
        self.timeout_s = timeout_s

    @property
    def api(self) -> Any:
        from kubernetes import client

        from workbench_dsl.backends.trainer.kubernetes import default_api_client

        if self._api_client is None:
            self._api_client = default_api_client()
        return client.CustomObjectsApi(self._api_client)

    # -- the API server -----------------------------------------------------------------

    def _get(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise DeployError(_api_error(e, f"reading InferenceService {name}")) from None

    def _patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.patch_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, self.namespace, PLURAL, name, body, field_validation=STRICT
            )
        except ApiException as e:
            raise DeployError(_api_error(e, f"patching InferenceService {name}")) from None

    # -- the interface --------------------------------------------------------------------

    def deploy(self, spec: DeploySpec) -> DeployResult:
        """Create the InferenceService, or roll the new model out to it as a canary."""
        from kubernetes.client.exceptions import ApiException

        existing = self._get(spec.endpoint)
        problems = cluster_problems(spec, self.deployment_mode, canary=existing is not None)
        if problems:
            raise DeployError("; ".join(problems))
        if existing is None:
            body = inference_service(
                spec, self.namespace, image=self.image, deployment_mode=self.deployment_mode
            )
            try:
                created = self.api.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, body, field_validation=STRICT
                )
            except ApiException as e:
                raise DeployError(
                    _api_error(e, f"creating InferenceService {spec.endpoint}")
                ) from None
            generation = int(created.get("metadata", {}).get("generation", 1))
            previous = None
        else:
            previous = _predictor_status(existing).get("latestReadyRevision")
            patch = canary_patch(spec, image=self.image, deployment_mode=self.deployment_mode)
            patched = self._patch(spec.endpoint, patch)
            generation = int(patched.get("metadata", {}).get("generation", 0))
        status = self._wait(spec.endpoint, generation, previous)
        predictor = _predictor_status(status)
        revision = str(predictor.get("latestCreatedRevision") or "")
        url = _inference_url(status, spec.endpoint, "openai" if spec.llm else spec.protocol)
        canary = existing is not None and spec.canary_percent < 100
        return DeployResult(url=url, revision=revision, canary=canary)

    def promote(self, name: str) -> EndpointInfo:
        """All traffic to the latest revision (``canaryTrafficPercent`` removed)."""
        self._require(name)
        self._patch(name, {"spec": {"predictor": {"canaryTrafficPercent": None}}})
        return self.get(name)

    def rollback(self, name: str) -> EndpointInfo:
        """All traffic back to the previous rolled-out revision (``canaryTrafficPercent: 0``)."""
        self._require(name)
        self._patch(name, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
        return self.get(name)

    def stop(self, name: str) -> None:
        """Delete the InferenceService."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as e:
            if e.status != 404:
                raise DeployError(_api_error(e, f"deleting InferenceService {name}")) from None

    def list(self) -> list[EndpointInfo]:
        """The InferenceServices this tool manages in the namespace."""
        from kubernetes.client.exceptions import ApiException

        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        try:
            found = self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, label_selector=selector
            )
        except ApiException as e:
            raise DeployError(_api_error(e, "listing InferenceServices")) from None
        return [self._info(obj) for obj in found.get("items", [])]

    def get(self, name: str) -> EndpointInfo:
        return self._info(self._require(name))

    def _info(self, obj: dict[str, Any]) -> EndpointInfo:
        name = str(obj.get("metadata", {}).get("name", ""))
        predictor_spec_ = obj.get("spec", {}).get("predictor", {})
        status = _predictor_status(obj)
        percent = predictor_spec_.get("canaryTrafficPercent")
        protocol = _served_protocol(obj)
        canary = status.get("latestCreatedRevision") if percent not in (None, 100) else None
        stable = (
            status.get("previousRolledoutRevision") if canary else status.get("latestReadyRevision")
        )
        return EndpointInfo(
            name=name,
            url=_inference_url(obj, name, protocol),
            protocol=protocol,
            state="ready" if _condition(obj, "Ready") == "True" else "not ready",
            stable=stable,
            canary=canary,
            canary_percent=int(percent or 0) if canary else 0,
            auth="none",
        )

    def _require(self, name: str) -> dict[str, Any]:
        obj = self._get(name)
        if obj is None:
            raise DeployError(f"no InferenceService {name} in namespace {self.namespace}")
        return obj

    def _wait(self, name: str, generation: int, previous: str | None) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            obj = self._get(name)
            if obj is None:
                raise DeployError(f"InferenceService {name} disappeared while rolling out")
            status = obj.get("status") or {}
            predictor = _predictor_status(obj)
            observed = int(status.get("observedGeneration") or 0)
            if observed >= generation:
                failed = _failed_condition(obj)
                created = predictor.get("latestCreatedRevision")
                ready = predictor.get("latestReadyRevision")
                if failed is not None:
                    keeps = f"; {previous} keeps serving" if previous else ""
                    raise DeployError(f"InferenceService {name}: {failed}{keeps}")
                if created and created == ready and _condition(obj, "Ready") == "True":
                    return obj
            if time.monotonic() > deadline:
                raise DeployError(
                    f"InferenceService {name} was not ready within {self.timeout_s:g}s"
                )
            time.sleep(self.poll_s)


def _predictor_status(obj: dict[str, Any]) -> dict[str, Any]:
    return ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def _failed_condition(obj: dict[str, Any]) -> str | None:
    """The message of a condition that says the rollout failed (not merely in progress)."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        reason = str(c.get("reason") or "")
        if c.get("status") == "False" and (reason in _FAILED_REASONS or "Fail" in reason):
            return f"{reason}: {c.get('message', '')}".strip()
    return None


def _served_protocol(obj: dict[str, Any]) -> str:
    """What the InferenceService really answers: ``openai`` for an LLM, else ``v1`` or ``v2``."""
    predictor = (obj.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model")
    if isinstance(model, dict):
        if (model.get("modelFormat") or {}).get("name") == "huggingface":
            return "openai"
        # KServe's default when a model names none (constants.ProtocolV1).
        return str(model.get("protocolVersion") or "v1")
    # Our own server in a custom container answers v1 and v2; the deployment chose one.
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    chosen = annotations.get(PROTOCOL_ANNOTATION)
    return chosen if chosen in ("v1", "v2") else "v2"


def _inference_url(obj: dict[str, Any], name: str, protocol: str) -> str:
    base = str((obj.get("status") or {}).get("url") or "").rstrip("/")
    if not base:
        return ""
    if protocol == "openai":
        from workbench_dsl.backends.deployer._kserve_llm import OPENAI_ROUTE

        return f"{base}{OPENAI_ROUTE}"
    return (
        f"{base}/v1/models/{name}:predict" if protocol == "v1" else f"{base}/v2/models/{name}/infer"
    )


def _api_error(e: Any, doing: str) -> str:
    import json

    message = e.reason
    try:
        message = json.loads(e.body).get("message", message)
    except Exception:
        pass
    return f"{doing}: HTTP {e.status}: {message}"
