"""The body of a ``@serve`` step and of the prebuilt ``deploy``: put a registered model behind an endpoint.

Locally it deploys to the endpoint's KServe model server on 127.0.0.1 (started
detached when needed); on a cluster it creates or patches the KServe
InferenceService. Either way the outputs are the inference ``url`` and the new
``revision``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from workbench_dsl import _env
from workbench_dsl.backends.deployer._predictors import model_dir
from workbench_dsl.backends.registry import TAG_FLAVOR
from workbench_dsl.errors import JobFailed
from workbench_dsl.runtime._lineage import reporting
from workbench_dsl.runtime.serve_settings import OVERRIDABLE, ServeOptionError, ServeSettings

__all__ = ["OVERRIDABLE", "ServeOutputs", "deploy_model", "launch", "settings_for"]

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ServeOutputs(NamedTuple):
    url: str
    revision: str


class Located(NamedTuple):
    """A model version found: where its files are, its flavor, the registry's tags on it."""

    storage: str
    flavor: str
    tags: dict[str, str]


def settings_for(config: Any, inputs: dict[str, Any]) -> ServeSettings:
    """The step's settings from its baked-in JSON, with the given inputs over them.

    Raises SettingsError for a component another version wrote, JobFailed for an
    input (the prebuilt ``deploy``'s) that cannot work.
    """
    settings = ServeSettings.from_json(config)
    try:
        return settings.with_inputs(inputs)
    except ServeOptionError as e:
        raise JobFailed(str(e)) from None


@reporting("serve")
def launch(source: str, fn_name: str, config_json: str, args: dict[str, Any]) -> ServeOutputs:
    """Deploy ``args['model_uri']`` with the step's settings (inputs override them)."""
    del source, fn_name  # the predictor's source travels in the config
    settings = settings_for(json.loads(config_json), args)
    return deploy_model(str(args.get("model_uri") or ""), settings)


def deploy_model(model_uri: str, settings: ServeSettings) -> ServeOutputs:
    """Resolve ``model_uri`` in the registry and deploy it as the endpoint's next revision."""
    from workbench_dsl.backends.deployer import DeployError, check_endpoint_name

    endpoint = settings.endpoint or ""
    problem = check_endpoint_name(endpoint)
    if problem:
        raise JobFailed(problem)
    if not model_uri:
        raise JobFailed(
            f"nothing to deploy to {endpoint}: model_uri is empty (was the model registered? "
            f"branch on the register step's 'promoted' output)"
        )
    problem = settings.compute_problem()
    if problem:
        raise JobFailed(f"endpoint {endpoint}: {problem}")

    from workbench_dsl.runtime._placement import on_cluster

    local = not on_cluster()
    found = _locate(model_uri, settings, local=local)
    if settings.llm is not None:
        _check_llm_model(model_uri, found, settings)
    spec = settings.deploy_spec(
        model_uri, found.storage, found.flavor, run_id=os.environ.get(_env.RUN_ID)
    )
    percent = spec.canary_percent
    _env.set_status(f"deploying {model_uri} to {endpoint}")
    try:
        if local:
            from workbench_dsl.backends.deployer import local_deployer

            # Never make a bearer token here: a step's output goes to its log, a file.
            result = local_deployer().deploy(spec, issue_token=False)
        else:
            from workbench_dsl.backends.deployer import Deployer, kserve_deployer

            deployer: Deployer = kserve_deployer(
                _namespace(settings),
                image=settings.cluster.image,
                deployment_mode=settings.kserve_deployment_mode,
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


def _check_llm_model(model_uri: str, found: Located, settings: ServeSettings) -> None:
    """Refuse, before anything is deployed, a model an LLM endpoint cannot serve as configured."""
    from workbench_dsl.backends.registry import llm_tags

    assert settings.llm is not None
    if found.flavor != llm_tags.FLAVOR:
        raise JobFailed(
            f"endpoint {settings.endpoint}: kind='llm' serves Hugging Face Transformers model "
            f"directories, but {model_uri} is a {found.flavor} model; register the directory "
            f"save_pretrained wrote, or use kind='predictive'"
        )
    limit = llm_tags.context_length_from_tags(found.tags)
    if limit is None and "://" not in found.storage.removeprefix("file://"):
        config = llm_tags.read_config(model_dir(found.storage))
        limit = llm_tags.context_length_from_config(config) if config else None
    problem = settings.llm.context_problem(limit, model_uri)
    if problem:
        raise JobFailed(f"endpoint {settings.endpoint}: {problem}")


def _locate(model_uri: str, settings: ServeSettings, *, local: bool) -> Located:
    """Where the model's files are, its flavor and tags (registry URIs are resolved there)."""
    if not model_uri.startswith("models:/"):
        # A path or storage URI given directly: an MLflow or Transformers model directory.
        return Located(model_uri, _flavor_from_dir(model_uri) or "pyfunc", {})
    from workbench_dsl.backends.registry import open_registry

    if local:
        uri = settings.tracking_uri or None
    else:
        uri = settings.cluster_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
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
    flavor = version.tags.get(TAG_FLAVOR) or ""
    if flavor in ("", "mlflow"):
        flavor = _flavor_from_dir(storage) or "pyfunc"
    return Located(storage, flavor, dict(version.tags))


def _flavor_from_dir(storage: str) -> str | None:
    """The flavor of a local model directory: its MLmodel's, or Transformers for a bare one."""
    from workbench_dsl.backends.registry import llm_tags

    path = model_dir(storage) / "MLmodel"
    if not path.is_file():
        if (model_dir(storage) / "config.json").is_file():
            return llm_tags.FLAVOR  # what save_pretrained writes
        return None
    import yaml

    flavors = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("flavors", {})
    for name in ("sklearn", "pytorch"):
        if name in flavors:
            return name
    return "pyfunc"


def _namespace(settings: ServeSettings) -> str:
    ns = settings.cluster.namespace or os.environ.get("WORKBENCH_NAMESPACE")
    if not ns and _SA_NAMESPACE.exists():
        ns = _SA_NAMESPACE.read_text(encoding="utf-8").strip()
    return str(ns or "default")
