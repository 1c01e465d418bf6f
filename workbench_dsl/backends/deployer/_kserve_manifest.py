"""The InferenceService of an endpoint, and the merge patch of a canary rollout, as the API server receives them.

Built with the KServe SDK's models, serialised, and cleaned of what KServe's
webhook refuses; :func:`cluster_problems` says what the cluster's KServe mode
or runtimes cannot do of a deployment before anything is sent.
See https://kserve.github.io/website/latest/modelserving/v1beta1/rollout/canary/
"""

from __future__ import annotations

from typing import Any

from workbench_dsl.backends.deployer import DeploySpec
from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE

GROUP, VERSION = "serving.kserve.io", "v1beta1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "workbench-dsl"}
MODEL_URI_ANNOTATION = "workbench.dev/model-uri"
#: The protocol a custom-container endpoint was deployed for (its spec has no
#: ``protocolVersion``; the workbench server in it answers v1 and v2).
PROTOCOL_ANNOTATION = "workbench.dev/protocol"
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
    if spec.kind == "llm":
        return False  # KServe's Hugging Face runtime
    return spec.protocol == "v1" and model_format(spec.flavor) not in V1_FORMATS


def cluster_problems(spec: DeploySpec, deployment_mode: str, *, canary: bool) -> list[str]:
    """What KServe in ``deployment_mode`` cannot do of ``spec`` (empty when it can do all)."""
    problems = []
    if spec.llm is not None:
        from workbench_dsl.backends.deployer import _kserve_llm

        problems += _kserve_llm.problems(spec.endpoint, spec.llm, spec.resources)
    if deployment_mode not in DEPLOYMENT_MODES:
        problems.append(
            f"[cluster] kserve_deployment_mode={deployment_mode!r} must be one of "
            f"{', '.join(DEPLOYMENT_MODES)}"
        )
    if spec.request_log_uri and spec.log_requests:
        from workbench_dsl.backends.deployer._kserve_logger import check_uri

        bad = check_uri(spec.request_log_uri)
        if bad:
            problems.append(f"endpoint {spec.endpoint}: {bad}")
        if spec.request_log_sample < 1:
            problems.append(
                f"endpoint {spec.endpoint}: request_log_sample={spec.request_log_sample:g} "
                f"cannot hold on a cluster: KServe's payload logger has no sample rate and "
                f"would log every request; use request_log_sample=1.0 (or log_requests=False)"
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
    protocol = spec.protocol if uses_workbench_server(spec) else None
    return {
        MODEL_URI_ANNOTATION: spec.model_uri,
        PROTOCOL_ANNOTATION: protocol,
        SCALE_TO_ZERO_ANNOTATION: retention,
    }


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
        "logger": _logger(spec),
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
    if spec.llm is not None:
        from workbench_dsl.backends.deployer import _kserve_llm

        model = _kserve_llm.model_spec(spec.storage, spec.llm, spec.resources, resources)
        return V1beta1PredictorSpec(model=model, **common)
    model = V1beta1ModelSpec(
        model_format=V1beta1ModelFormat(name=model_format(spec.flavor)),
        protocol_version=spec.protocol,
        storage_uri=spec.storage,
        resources=resources,
    )
    return V1beta1PredictorSpec(model=model, **common)


def _logger(spec: DeploySpec) -> Any:
    if not (spec.request_log_uri and spec.log_requests):
        return None
    from workbench_dsl.backends.deployer._kserve_logger import logger_spec

    return logger_spec(spec.request_log_uri, spec.request_log_service_account, MODEL_URI_ANNOTATION)


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
    predictor.setdefault("logger", None)  # logging turned off since: drop the old logger
    if "containers" in predictor:
        predictor["model"] = None
    else:
        predictor["containers"] = None
    return {
        "metadata": {"annotations": isvc_annotations(spec, deployment_mode)},
        "spec": {"predictor": predictor},
    }
