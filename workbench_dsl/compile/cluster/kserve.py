"""KServe's InferenceService admission rules that a schema cannot say, ported from its webhook.

Source: kserve/kserve ``pkg/apis/serving/v1beta1/inference_service_validation.go``
(``validateInferenceService``: name, autoscaler class, ``validatePredictor``,
exactly one implementation) and ``component.go`` (``ComponentExtensionSpec.Validate``:
replicas, container concurrency, ``validateLogger``), at v0.17.0 and v0.20.0, plus what the
deployment mode decides (``pkg/constants/constants.go``: ``Knative`` revisions
split traffic; ``Standard``, the default since 0.17, runs one Deployment).
The Knative annotations KServe copies to the revision are checked as Knative's
webhook does (knative/serving v0.48, the version KServe 0.17-0.21 build
against), and a ``huggingface`` model's arguments as its server reads them
(:mod:`workbench_dsl.compile.cluster._huggingface`).
"""

from __future__ import annotations

import re
from typing import Any

from workbench_dsl.compile.cluster._huggingface import (
    extended_resources,
    huggingface_model,
    knative_annotations,
)

#: IsvcNameFmt
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
#: The implementations of a predictor (PredictorSpec.GetImplementations).
_FRAMEWORKS = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
    "model",
)
#: constants.AutoscalerAllowedClassList
_AUTOSCALERS = ("hpa", "external", "keda", "none")
_MODE = "serving.kserve.io/deploymentMode"
#: ParseDeploymentMode: the modes an InferenceService may name (legacy names still parsed).
_MODES = ("Knative", "Standard", "Serverless", "RawDeployment", "ModelMesh")
_ONE_REVISION = ("Standard", "RawDeployment")


def check(isvc: dict[str, Any]) -> list[str]:
    """What KServe's validating webhook (and its deployment mode) would refuse in ``isvc``."""
    problems: list[str] = []
    meta = isvc.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not _NAME.match(name):
        problems.append(
            f"metadata.name: {name!r} must match {_NAME.pattern} "
            f"(InvalidISVCNameFormatError, inference_service_validation.go)"
        )
    annotations = meta.get("annotations") or {}
    autoscaler = annotations.get("serving.kserve.io/autoscalerClass")
    if autoscaler is not None and autoscaler not in _AUTOSCALERS:
        problems.append(f"[{autoscaler}] is not a supported autoscaler class type")
    mode = annotations.get(_MODE, "Standard")
    if mode not in _MODES:
        problems.append(f"metadata.annotations[{_MODE}]: {mode!r} is not a deployment mode")
    problems += knative_annotations(annotations)
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    problems += _predictor(predictor, mode)
    model = predictor.get("model")
    if isinstance(model, dict) and (model.get("modelFormat") or {}).get("name") == "huggingface":
        problems += huggingface_model(model)
    for where, container in _containers(predictor):
        problems += extended_resources(where, container.get("resources"))
    return problems


def _containers(predictor: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for framework in _FRAMEWORKS:
        spec = predictor.get(framework)
        if isinstance(spec, dict):
            found.append((f"spec.predictor.{framework}", spec))
    for i, c in enumerate(predictor.get("containers") or []):
        if isinstance(c, dict):
            found.append((f"spec.predictor.containers[{i}]", c))
    return found


def _predictor(predictor: dict[str, Any], mode: str) -> list[str]:
    problems: list[str] = []
    for framework in _FRAMEWORKS:
        spec = predictor.get(framework)
        if isinstance(spec, dict) and spec.get("name"):
            # validatePredictor
            problems.append(
                f"spec.predictor.{framework}.name: the 'name' field is not allowed in standard "
                f"predictor"
            )
    implementations = [f for f in _FRAMEWORKS if predictor.get(f) is not None]
    if not implementations and predictor.get("containers"):
        implementations = ["containers"]  # a custom predictor
    if len(implementations) != 1:
        problems.append(
            f"spec.predictor: exactly one of {', '.join(_FRAMEWORKS)} or containers must be "
            f"specified (got {', '.join(implementations) or 'none'}) (validateExactlyOneImplementation)"
        )
    # Wrong types are the schema's to report; these rules read whole numbers only.
    low = _whole(predictor.get("minReplicas"), 1)
    high = _whole(predictor.get("maxReplicas"), 0)
    if low < 0:
        problems.append("spec.predictor.minReplicas: MinReplicas cannot be less than 0")
    if high < 0:
        problems.append("spec.predictor.maxReplicas: MaxReplicas cannot be less than 0")
    if low > high and high != 0:
        problems.append("spec.predictor: MinReplicas cannot be greater than MaxReplicas")
    problems += _logger(predictor.get("logger"))
    concurrency = _whole(predictor.get("containerConcurrency"), 0)
    if concurrency < 0:
        problems.append("spec.predictor.containerConcurrency: parallelism cannot be less than 0")
    percent = predictor.get("canaryTrafficPercent")
    if mode in _ONE_REVISION:
        if percent is not None:
            problems.append(
                f"spec.predictor.canaryTrafficPercent: {mode} mode keeps one revision, so a "
                f"canary split is ignored; it needs the Knative deployment mode"
            )
        if low == 0:
            problems.append(
                f"spec.predictor.minReplicas: 0 (scale to zero) needs the Knative deployment "
                f"mode, {mode} keeps at least one replica"
            )
    return problems


def _logger(logger: Any) -> list[str]:
    """validateLogger (component.go): a known mode; a storage spec names path, parameters and key."""
    if not isinstance(logger, dict):
        return []
    problems = []
    if logger.get("mode") not in ("all", "request", "response"):
        problems.append(f"spec.predictor.logger.mode: {logger.get('mode')!r}: invalid logger type")
    storage = logger.get("storage")
    if isinstance(storage, dict) and any(
        storage.get(k) is None for k in ("path", "parameters", "key")
    ):
        problems.append(
            "spec.predictor.logger.storage: invalid logger storage configuration (path, "
            "parameters and key must all be set)"
        )
    return problems


def _whole(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` after a JSON merge patch (RFC 7386), as the API server applies one."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
