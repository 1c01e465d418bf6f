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
from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
#: Ask the API server to refuse unknown or duplicate fields instead of dropping them.
STRICT = "Strict"  # the same as backends.trainer.manifest.FIELD_VALIDATION
MANAGED_BY = {"app.kubernetes.io/managed-by": "workbench-dsl"}
MODEL_URI_ANNOTATION = "workbench.dev/model-uri"
#: How KServe runs the endpoint. Set on every InferenceService so the cluster's
#: default (``Standard`` since KServe 0.17, kserve/kserve pkg/constants/constants.go)
#: never decides whether a canary split or scale-to-zero is possible.
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
#: How long Knative keeps the last pod of a ``minReplicas: 0`` endpoint after it decides
#: to scale to zero; KServe copies the InferenceService's annotations (all but
#: ``serviceAnnotationDisallowedList``) to the Knative revision (knative/serving v0.48,
#: the version KServe 0.17-0.21 build against: pkg/apis/autoscaling/register.go).
SCALE_TO_ZERO_ANNOTATION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
#: ``Knative`` (serverless: revisions, canaryTrafficPercent, scale to zero) or
#: ``Standard`` (a Deployment and an HPA: one revision at a time, at least one replica).
DEPLOYMENT_MODES = ("Knative", "Standard")
DEFAULT_DEPLOYMENT_MODE = "Knative"
#: KServe's own servers per flavor; everything else is served by MLServer's MLflow runtime.
MODEL_FORMATS = {"sklearn": "sklearn"}
#: The model formats whose ServingRuntime speaks protocol v1 (kserve-sklearnserver lists
#: v1 and v2; kserve-mlserver, the one serving ``mlflow``, lists v2 only:
#: kserve/kserve config/runtimes/kustomization.yaml and the runtimes beside it).
V1_FORMATS = ("sklearn",)
#: Condition reasons that mean the new revision will not become ready by waiting.
_FAILED_REASONS = {"RevisionFailed", "ContainerMissing", "ProgressDeadlineExceeded"}


def model_format(flavor: str) -> str:
    """The InferenceService ``modelFormat`` for an MLflow flavor."""
    return MODEL_FORMATS.get(flavor, "mlflow")


def uses_workbench_server(spec: DeploySpec) -> bool:
    """True when the endpoint runs our own server (a user predictor, or a protocol no runtime has).

    A model format with no ServingRuntime for the protocol would leave the
    InferenceService never Ready; our server answers v1 and v2 for every flavor.
    """
    if spec.predictor_source:
        return True
    return spec.protocol == "v1" and model_format(spec.flavor) not in V1_FORMATS


def cluster_problems(spec: DeploySpec, deployment_mode: str, *, canary: bool) -> list[str]:
    """What KServe in ``deployment_mode`` cannot do of ``spec`` (empty when it can do all)."""
    problems = []
    if deployment_mode not in DEPLOYMENT_MODES:
        problems.append(
            f"[cluster] kserve_deployment_mode={deployment_mode!r} must be one of "
            f"{', '.join(DEPLOYMENT_MODES)}"
        )
    if spec.auth == "token":
        problems.append(
            f"endpoint {spec.endpoint}: auth='token' is a local endpoint feature; KServe has no "
            f"per-endpoint bearer token, so the endpoint would be open: use auth='none' and "
            f"protect it with the cluster's ingress auth"
        )
    if deployment_mode == "Standard":
        if spec.min_replicas == 0:
            problems.append(
                f"endpoint {spec.endpoint}: min_replicas=0 (scale to zero) needs KServe's Knative "
                f"mode; set [cluster] kserve_deployment_mode = 'Knative' or min_replicas >= 1"
            )
        if canary and spec.canary_percent < 100:
            problems.append(
                f"endpoint {spec.endpoint}: canary_percent={spec.canary_percent} needs KServe's "
                f"Knative mode (Standard mode serves one revision); set [cluster] "
                f"kserve_deployment_mode = 'Knative' or canary_percent=100"
            )
    return problems


def isvc_annotations(spec: DeploySpec, deployment_mode: str) -> dict[str, str | None]:
    """The InferenceService's own annotations for ``spec`` (None: remove it, in a patch)."""
    retention = None
    if deployment_mode == "Knative" and spec.min_replicas == 0:
        retention = f"{spec.scale_to_zero_after}s"
    return {MODEL_URI_ANNOTATION: spec.model_uri, SCALE_TO_ZERO_ANNOTATION: retention}


def predictor_spec(spec: DeploySpec, *, image: str, canary_percent: int | None) -> Any:
    """The ``spec.predictor`` of the InferenceService (KServe SDK model)."""
    from kserve.models import V1beta1ModelFormat, V1beta1ModelSpec, V1beta1PredictorSpec
    from kubernetes.client import V1Container, V1EnvVar, V1ResourceRequirements, V1Toleration

    resources = (
        V1ResourceRequirements(
            requests=spec.resources.get("requests") or None,
            limits=spec.resources.get("limits") or None,
        )
        if spec.resources
        else None
    )
    common: dict[str, Any] = {
        "min_replicas": spec.min_replicas,
        "max_replicas": spec.max_replicas,
        "canary_traffic_percent": canary_percent,
        "node_selector": dict(spec.node_selector) or None,
        "tolerations": [V1Toleration(**t) for t in spec.tolerations] or None,
    }
    if uses_workbench_server(spec):
        # The user's predictor (or the flavor's own, for a protocol no ServingRuntime
        # offers) runs in the workbench runtime image; KServe's storage initializer
        # puts the model under /mnt/models (STORAGE_URI).
        env = [
            V1EnvVar(name="STORAGE_URI", value=spec.storage),
            V1EnvVar(name="WORKBENCH_ENDPOINT", value=spec.endpoint),
            V1EnvVar(name="WORKBENCH_FLAVOR", value=spec.flavor),
            V1EnvVar(name="WORKBENCH_PREDICTOR_NAME", value=spec.predictor_name or ""),
            V1EnvVar(name="WORKBENCH_PREDICTOR_SOURCE", value=spec.predictor_source or ""),
        ]
        container = V1Container(
            name="kserve-container",
            image=image,
            command=["python", "-m", "workbench_dsl.backends.deployer._server", "pod"],
            env=env,
            resources=resources,
        )
        return V1beta1PredictorSpec(containers=[container], **common)
    # No ``name``: KServe's webhook refuses it in a standard predictor ("the 'name'
    # field is not allowed in standard predictor", validatePredictor in
    # pkg/apis/serving/v1beta1/inference_service_validation.go, since v0.16).
    model = V1beta1ModelSpec(
        model_format=V1beta1ModelFormat(name=model_format(spec.flavor)),
        protocol_version=spec.protocol,
        storage_uri=spec.storage,
        resources=resources,
    )
    return V1beta1PredictorSpec(model=model, **common)


def inference_service(
    spec: DeploySpec,
    namespace: str,
    *,
    image: str = DEFAULT_RUNTIME_IMAGE,
    deployment_mode: str = DEFAULT_DEPLOYMENT_MODE,
) -> dict[str, Any]:
    """The whole InferenceService of a first deployment, as the JSON the API server receives."""
    from kserve.models import V1beta1InferenceService, V1beta1InferenceServiceSpec
    from kubernetes.client import ApiClient, V1ObjectMeta

    isvc = V1beta1InferenceService(
        api_version=f"{GROUP}/{VERSION}",
        kind="InferenceService",
        metadata=V1ObjectMeta(
            name=spec.endpoint,
            namespace=namespace,
            labels=dict(MANAGED_BY),
            annotations={
                DEPLOYMENT_MODE_ANNOTATION: deployment_mode,
                **{
                    k: v
                    for k, v in isvc_annotations(spec, deployment_mode).items()
                    if v is not None
                },
            },
        ),
        spec=V1beta1InferenceServiceSpec(
            predictor=predictor_spec(spec, image=image, canary_percent=None)
        ),
    )
    body: dict[str, Any] = ApiClient().sanitize_for_serialization(isvc)
    _drop_model_name(body["spec"]["predictor"])
    return body


def _drop_model_name(predictor: dict[str, Any]) -> None:
    # The SDK model serialises its required-looking ``name`` as "" when unset; the
    # webhook refuses any non-empty one and the field has no business being there.
    model = predictor.get("model")
    if isinstance(model, dict) and not model.get("name"):
        model.pop("name", None)


def canary_patch(
    spec: DeploySpec,
    *,
    image: str = DEFAULT_RUNTIME_IMAGE,
    deployment_mode: str = DEFAULT_DEPLOYMENT_MODE,
) -> dict[str, Any]:
    """The merge patch that rolls a new revision out as a canary of ``canary_percent``."""
    from kubernetes.client import ApiClient

    percent = spec.canary_percent if spec.canary_percent < 100 else None
    predictor = ApiClient().sanitize_for_serialization(
        predictor_spec(spec, image=image, canary_percent=percent)
    )
    _drop_model_name(predictor)
    # A merge patch keeps fields it does not name: clear the other way of serving.
    # (The deployment mode annotation is left alone: KServe refuses to change it.)
    predictor.setdefault("canaryTrafficPercent", None)
    if "containers" in predictor:
        predictor["model"] = None
    else:
        predictor["containers"] = None
    return {
        "metadata": {"annotations": isvc_annotations(spec, deployment_mode)},
        "spec": {"predictor": predictor},
    }


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
        from kubernetes import client, config

        if self._api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api_client = client.ApiClient()
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
        url = _inference_url(status, spec.endpoint, spec.protocol)
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
        protocol = predictor_spec_.get("model", {}).get("protocolVersion", "v1")
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


def _inference_url(obj: dict[str, Any], name: str, protocol: str) -> str:
    base = str((obj.get("status") or {}).get("url") or "").rstrip("/")
    if not base:
        return ""
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
