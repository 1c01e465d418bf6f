"""Model endpoints with canary rollouts: local KServe model servers, or KServe InferenceServices.

One small interface, two implementations, each imported only when used:

* :mod:`.local` — a KServe ``ModelServer`` process per endpoint on 127.0.0.1,
  V1 and V2 protocols, ``/metrics``; the stable and canary revisions are both
  loaded in it and requests are split by the canary share at one URL.
  Endpoints outlive the pipeline run and are recorded in the run store.
* :mod:`.kubernetes` — an ``InferenceService`` built with the KServe SDK models:
  ``canaryTrafficPercent`` for the split, promote and rollback as patches.
  See https://kserve.github.io/website/latest/modelserving/v1beta1/rollout/canary/
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from workbench_dsl.backends.deployer._llm_options import DTYPES, KINDS, LLMOptions

if TYPE_CHECKING:
    from workbench_dsl.backends.deployer.kubernetes import KServeDeployer
    from workbench_dsl.backends.deployer.local import LocalDeployer
    from workbench_dsl.paths import LocalRoot

__all__ = [
    "AUTH_MODES",
    "DTYPES",
    "KINDS",
    "PROTOCOLS",
    "DeployError",
    "DeployResult",
    "DeploySpec",
    "Deployer",
    "EndpointInfo",
    "LLMOptions",
    "check_endpoint_name",
    "kserve_deployer",
    "local_deployer",
    "token_hash",
]

PROTOCOLS = ("v1", "v2")
AUTH_MODES = ("none", "token")
#: KServe names InferenceServices as DNS-1035 labels (it appends -predictor-00001).
_ENDPOINT = re.compile(r"^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$")


class DeployError(Exception):
    """A deployment that did not happen; the message says why (a model's load error, ...)."""


def check_endpoint_name(name: str) -> str | None:
    """None when ``name`` is a valid endpoint name, else why not."""
    if not isinstance(name, str) or not _ENDPOINT.match(name):
        return (
            f"endpoint name {name!r} must be lowercase letters, digits and '-', start with a "
            f"letter and be at most 45 characters (for example 'churn')"
        )
    return None


def token_hash(token: str) -> str:
    """How a bearer token is stored: its SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class DeploySpec:
    """One deployment of a model version to an endpoint.

    Attributes:
        endpoint: The endpoint's name (a URL path segment and a Kubernetes name).
        model_uri: What is deployed, as the registry names it (``models:/churn/3``).
        storage: Where its files are: a local directory, or a ``s3://``/``gs://`` URI.
        flavor: The model's MLflow flavor (``sklearn``, ``pytorch``, ``pyfunc``, ...).
        canary_percent: The share of requests the new revision gets when the
            endpoint already serves one (the first revision always gets 100).
        predictor_source: Source of a user predictor (a ``predict(model, instances)``
            function or a class with ``load`` and ``predict``), or None for the flavor's own.
        predictor_name: Its name in that source.
        min_replicas: Model servers kept running; 0 scales to zero when idle (locally
            the server stops after ``scale_to_zero_after`` seconds without a request
            and the next request starts it again; KServe's ``minReplicas: 0``).
        resources: Requests and limits of each replica on a cluster (Kubernetes shape).
        log_requests: Keep a log of requests and responses (locally; on a cluster when
            ``request_log_uri`` is set).
        request_log_sample: The share of requests logged (0 < x <= 1).
        request_log_max_mb: The log's size at most, in MiB; older entries are dropped.
        scale_to_zero_after: Seconds an endpoint with ``min_replicas=0`` stays idle
            before its model server is stopped (on a cluster: Knative's
            scale-to-zero pod retention period).
        kind: ``"predictive"`` (a model behind a predictor) or ``"llm"`` (a generative
            model served with the OpenAI-compatible API).
        llm: The knobs of an LLM endpoint (set exactly when ``kind == "llm"``).
        cost_per_hour: What one running model server costs (the step's compute
            profile's ``cost_per_hour``), for the live $/hour of endpoints.
        request_log_uri: On a cluster, where KServe's payload logger stores the requests
            (``[cluster] request_log_uri``, ``s3://BUCKET/PREFIX``); None: no logger.
        request_log_service_account: The service account whose secrets let KServe's
            logger write there (None: KServe's default, ``logger-sa``).
    """

    endpoint: str
    model_uri: str
    storage: str
    flavor: str = "pyfunc"
    canary_percent: int = 10
    protocol: str = "v2"
    min_replicas: int = 1
    max_replicas: int = 1
    auth: str = "none"
    predictor_source: str | None = None
    predictor_name: str | None = None
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    log_requests: bool = True
    request_log_sample: float = 1.0
    request_log_max_mb: int = 64
    scale_to_zero_after: int = 300
    kind: str = "predictive"
    llm: LLMOptions | None = None
    cost_per_hour: float = 0.0
    request_log_uri: str | None = None
    request_log_service_account: str | None = None


@dataclass(frozen=True)
class DeployResult:
    """Where the endpoint answers and which revision the deployment made.

    ``token`` is set only when this deployment created the endpoint's bearer
    token: it is shown once and stored hashed. ``needs_token``: the endpoint
    wants a bearer token and has none yet (``workbench endpoints token NAME``).
    """

    url: str
    revision: str
    token: str | None = None
    unchanged: bool = False
    canary: bool = False
    needs_token: bool = False


@dataclass(frozen=True)
class ScaleInfo:
    """How a local endpoint scales and what its model server does now.

    ``state``: ``running`` (a model server answers), ``scaled to zero`` (none
    runs; the next request starts one), ``starting`` (a cold start is under way),
    or ``stopped``. Cold starts are the recorded ones, in seconds. ``idle_ratio``:
    the share of the last ``idle_window_s`` seconds with no request in flight
    (None when the server did not say).
    """

    min_replicas: int = 1
    scale_to_zero_after: int = 300
    state: str = "stopped"
    cost_per_hour: float = 0.0
    cold_starts: int = 0
    last_cold_start_s: float | None = None
    median_cold_start_s: float | None = None
    last_cold_start_error: str | None = None
    idle_ratio: float | None = None
    idle_window_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "min_replicas": self.min_replicas,
            "scale_to_zero_after": self.scale_to_zero_after,
            "state": self.state,
            "cost_per_hour": self.cost_per_hour,
            "cold_starts": self.cold_starts,
            "last_cold_start_s": self.last_cold_start_s,
            "median_cold_start_s": self.median_cold_start_s,
            "last_cold_start_error": self.last_cold_start_error,
            "idle_ratio": self.idle_ratio,
            "idle_window_s": self.idle_window_s,
        }


@dataclass(frozen=True)
class EndpointInfo:
    """An endpoint as ``workbench endpoints list`` shows it."""

    name: str
    url: str
    protocol: str
    state: str
    stable: str | None
    canary: str | None
    canary_percent: int
    auth: str
    revisions: list[dict[str, Any]] = field(default_factory=list)
    scale: ScaleInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "protocol": self.protocol,
            "state": self.state,
            "stable": self.stable,
            "canary": self.canary,
            "canary_percent": self.canary_percent,
            "auth": self.auth,
            "revisions": self.revisions,
            "scale": self.scale.to_json() if self.scale is not None else None,
        }


@runtime_checkable
class Deployer(Protocol):
    """The one shape of a deployer: ``local.LocalDeployer`` and ``kubernetes.KServeDeployer``.

    What the deploy step and ``workbench endpoints`` need.
    """

    def deploy(self, spec: DeploySpec) -> DeployResult:
        """Create the endpoint, or roll a new revision out to it (as a canary if asked)."""
        ...

    def promote(self, name: str) -> EndpointInfo:
        """Send all traffic to the canary revision."""
        ...

    def rollback(self, name: str) -> EndpointInfo:
        """Drop the canary revision; all traffic back to the previous one."""
        ...

    def stop(self, name: str) -> EndpointInfo | None:
        """Stop serving (locally the endpoint's info is kept and returned)."""
        ...

    def get(self, name: str) -> EndpointInfo:
        """The endpoint ``name``, or :class:`DeployError` when there is none."""
        ...

    def list(self) -> list[EndpointInfo]:
        """Every endpoint this tool manages."""
        ...


def local_deployer(root: LocalRoot | None = None) -> LocalDeployer:
    """The local deployer for ``root`` (default: this process's local root)."""
    from workbench_dsl.backends.deployer.local import LocalDeployer
    from workbench_dsl.paths import local_root

    return LocalDeployer(root or local_root())


def kserve_deployer(
    namespace: str,
    api_client: Any = None,
    image: str | None = None,
    deployment_mode: str | None = None,
) -> KServeDeployer:
    """The KServe deployer for ``namespace`` (``api_client``: a ``kubernetes.client.ApiClient``)."""
    from workbench_dsl.backends.deployer.kubernetes import KServeDeployer

    return KServeDeployer(
        namespace, api_client=api_client, image=image, deployment_mode=deployment_mode
    )
