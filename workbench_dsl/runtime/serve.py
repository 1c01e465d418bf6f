"""The body of a ``@serve`` step and of the prebuilt ``deploy``: put a registered model behind an endpoint.

Locally it deploys to the endpoint's KServe model server on 127.0.0.1 (started
detached when needed); on a cluster it creates or patches the KServe
InferenceService. Either way the outputs are the inference ``url`` and the new
``revision``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from workbench_dsl import _env
from workbench_dsl.errors import JobFailed
from workbench_dsl.runtime._lineage import reporting

#: The step options a caller may give as inputs (the prebuilt ``deploy``'s interface).
OVERRIDABLE = ("endpoint", "canary_percent", "protocol", "min_replicas", "max_replicas", "auth")
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ServeOutputs(NamedTuple):
    url: str
    revision: str


@reporting("serve")
def launch(source: str, fn_name: str, config_json: str, args: dict[str, Any]) -> ServeOutputs:
    """Deploy ``args['model_uri']`` with the step's settings (inputs override them)."""
    del source, fn_name  # the predictor's source travels in the config
    cfg = json.loads(config_json)
    for key in OVERRIDABLE:
        if args.get(key) is not None:
            cfg[key] = args[key]
    return deploy_model(str(args.get("model_uri") or ""), cfg)


def deploy_model(model_uri: str, cfg: Mapping[str, Any]) -> ServeOutputs:
    """Resolve ``model_uri`` in the registry and deploy it as the endpoint's next revision."""
    from workbench_dsl.backends.deployer import (
        AUTH_MODES,
        PROTOCOLS,
        DeployError,
        DeploySpec,
        check_endpoint_name,
    )

    endpoint = str(cfg.get("endpoint") or "")
    problem = check_endpoint_name(endpoint)
    if problem:
        raise JobFailed(problem)
    if not model_uri:
        raise JobFailed(
            f"nothing to deploy to {endpoint}: model_uri is empty (was the model registered? "
            f"branch on the register step's 'promoted' output)"
        )
    protocol = str(cfg.get("protocol", "v2"))
    auth = str(cfg.get("auth", "none"))
    percent = cfg.get("canary_percent", 10)
    if protocol not in PROTOCOLS or auth not in AUTH_MODES:
        raise JobFailed(
            f"protocol must be v1 or v2 and auth none or token (got {protocol}, {auth})"
        )
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise JobFailed(f"canary_percent must be a whole number from 0 to 100 (got {percent!r})")

    from workbench_dsl.runtime._placement import on_cluster

    local = not on_cluster()
    storage, flavor = _locate(model_uri, cfg, local=local)
    spec = DeploySpec(
        endpoint=endpoint,
        model_uri=model_uri,
        storage=storage,
        flavor=flavor,
        canary_percent=percent,
        protocol=protocol,
        min_replicas=int(cfg.get("min_replicas", 1)),
        max_replicas=int(cfg.get("max_replicas", 1)),
        scale_to_zero_after=int(cfg.get("scale_to_zero_after", 300)),
        auth=auth,
        predictor_source=cfg.get("predictor_source"),
        predictor_name=cfg.get("predictor_name"),
        resources=dict(cfg.get("resources") or {}),
        node_selector=dict(cfg.get("node_selector") or {}),
        tolerations=list(cfg.get("tolerations") or []),
        run_id=os.environ.get(_env.RUN_ID),
        # The endpoint's compute profile's price, for the live $/hour of endpoints.
        cost_per_hour=float(cfg.get("cost_per_hour") or 0.0),
    )
    _env.set_status(f"deploying {model_uri} to {endpoint}")
    try:
        if local:
            from workbench_dsl.backends.deployer import local_deployer

            # Never make a bearer token here: a step's output goes to its log, a file.
            result = local_deployer().deploy(spec, issue_token=False)
        else:
            from workbench_dsl.backends.deployer import Deployer, kserve_deployer

            deployer: Deployer = kserve_deployer(
                _namespace(cfg),
                image=cfg.get("runtime_image"),
                deployment_mode=cfg.get("kserve_deployment_mode"),
            )
            result = deployer.deploy(spec)
    except DeployError as e:
        raise JobFailed(str(e)) from None
    if result.needs_token:
        # The token is shown once, to whoever makes it, on their terminal: never here.
        print(
            f"endpoint {endpoint} refuses predictions until it has a bearer token: make one "
            f"with `workbench endpoints token {endpoint}` (shown once, stored hashed)",
            flush=True,
        )
    if result.unchanged:
        line = f"{endpoint} already serves {model_uri} as {result.revision}"
    elif result.canary:
        line = f"{endpoint}: {result.revision} takes {percent}% as the canary"
    else:
        line = f"{endpoint}: {result.revision} takes all traffic"
    print(f"{line}; {result.url}", flush=True)
    _env.set_status(line)
    return ServeOutputs(result.url, result.revision)


def _locate(model_uri: str, cfg: Mapping[str, Any], *, local: bool) -> tuple[str, str]:
    """Where the model's files are and its flavor (registry URIs are resolved in the registry)."""
    if not model_uri.startswith("models:/"):
        # A path or storage URI given directly: an MLflow model directory.
        return model_uri, _flavor_from_dir(model_uri) or "pyfunc"
    from workbench_dsl.backends.registry import open_registry

    if local:
        uri = cfg.get("tracking_uri") or None
    else:
        uri = cfg.get("cluster_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise JobFailed(
                "no MLflow tracking server for the cluster: set [registry] cluster_tracking_uri "
                "in workbench.toml (or MLFLOW_TRACKING_URI in the step's env)"
            )
    registry = open_registry(uri)
    try:
        version = registry.resolve(model_uri)
    except Exception as e:
        raise JobFailed(f"cannot find {model_uri} in the registry at {registry.uri}: {e}") from None
    if version.tags.get("workbench.approval") == "rejected":
        raise JobFailed(f"{model_uri} was rejected; a rejected version is never deployed")
    storage = registry.download_uri(version.name, version.version)
    flavor = version.tags.get("workbench.flavor") or ""
    if flavor in ("", "mlflow"):
        flavor = _flavor_from_dir(storage) or "pyfunc"
    return storage, flavor


def _flavor_from_dir(storage: str) -> str | None:
    from workbench_dsl.backends.deployer._predictors import model_dir

    path = model_dir(storage) / "MLmodel"
    if not path.is_file():
        return None
    import yaml

    flavors = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("flavors", {})
    for name in ("sklearn", "pytorch"):
        if name in flavors:
            return name
    return "pyfunc"


def _namespace(cfg: Mapping[str, Any]) -> str:
    ns = cfg.get("namespace") or os.environ.get("WORKBENCH_NAMESPACE")
    if not ns and _SA_NAMESPACE.exists():
        ns = _SA_NAMESPACE.read_text(encoding="utf-8").strip()
    return str(ns or "default")
