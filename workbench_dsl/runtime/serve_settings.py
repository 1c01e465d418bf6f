"""The typed settings a ``@serve`` (or prebuilt ``deploy``) launcher carries, written once, read strictly.

``@serve`` checks its options by building a :class:`ServeSettings` (whose
constructor refuses a bad value with one line, :class:`ServeOptionError`), adds
what the project file says when the step is compiled (compute profile,
namespace, registry, KServe mode) and writes it into the component as JSON
(:meth:`ServeSettings.to_json`). The launcher and ``workbench plan`` read it
back with :meth:`ServeSettings.from_json`, which refuses an unknown key or a
mistyped value (:class:`~workbench_dsl.runtime.settings.SettingsError`), apply
the prebuilt ``deploy``'s inputs with :meth:`ServeSettings.with_inputs` (checked
again) and hand the backends a :class:`~workbench_dsl.backends.deployer.DeploySpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from workbench_dsl._settings import REBUILD, SettingsError, fail, known, opt_str
from workbench_dsl.backends.deployer import (
    AUTH_MODES,
    KINDS,
    PROTOCOLS,
    DeploySpec,
    LLMOptions,
    check_endpoint_name,
)
from workbench_dsl.compute import ClusterSettings

#: The settings a caller may give as inputs (the prebuilt ``deploy``'s interface).
OVERRIDABLE = (
    "endpoint",
    "canary_percent",
    "protocol",
    "min_replicas",
    "max_replicas",
    "auth",
    "log_requests",
    "request_log_sample",
    "request_log_max_mb",
    "scale_to_zero_after",
)
#: The shortest idle time before a scaled-to-zero endpoint stops (below it a model
#: server would restart between the requests of one client).
MIN_SCALE_TO_ZERO_S = 10
#: The longest: Knative refuses a scale-to-zero pod retention period over its
#: ``WindowMax`` of 1h (knative/serving pkg/apis/autoscaling/register.go and
#: annotation_validation.go), so local endpoints keep the same bound.
MAX_SCALE_TO_ZERO_S = 3600
_WHAT = "serve settings"
#: ``[cluster]`` settings of KServe's payload logger (``backends/deployer/_kserve_logger.py``).
_ONLY_WHEN_SET = ("request_log_uri", "request_log_service_account")


class ServeOptionError(ValueError):
    """An ``@serve``/``deploy`` option with a value that cannot work; the message says which."""


def _whole(value: Any, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


@dataclass(frozen=True)
class ServeSettings:
    """What a ``@serve`` step deploys and how, from decorator to deployer.

    Attributes:
        endpoint: The endpoint's name (None only in the prebuilt ``deploy``, whose
            ``endpoint`` is an input).
        canary_percent: The share of requests a new revision gets beside the previous one.
        protocol: ``v1`` or ``v2`` (the returned URL and the cluster's ``protocolVersion``).
        min_replicas: Replicas at least (0 scales to zero).
        max_replicas: Replicas at most.
        auth: ``none`` or ``token`` (a bearer token, local endpoints).
        log_requests: Keep a bounded, sampled log of requests and responses.
        request_log_sample: The share of requests logged (0 < x <= 1).
        request_log_max_mb: The log's size at most, in MiB (>= 1).
        scale_to_zero_after: Seconds idle before a ``min_replicas=0`` endpoint's model
            server stops (>= 10).
        kind: ``predictive`` or ``llm``.
        llm: The LLM knobs; set exactly when ``kind == "llm"``.
        step: The step's name (None in the prebuilt ``deploy``).
        profile: The compute profile's name (for messages); its compute is in ``cluster``.
        predictor_source: The user predictor's source (None: the flavor's own, or an LLM).
        predictor_name: Its name in that source.
        tracking_uri: The MLflow registry a local run resolves ``models:/`` URIs in.
        cluster_tracking_uri: The one a run on a cluster uses.
        kserve_deployment_mode: ``Knative`` or ``Standard`` (None: the deployer's default).
        cluster: Image, namespace and the profile's compute for each replica.
        request_log_uri: ``[cluster] request_log_uri``: where KServe's payload logger
            stores the endpoint's requests on a cluster (None: no logger).
        request_log_service_account: ``[cluster] request_log_service_account``.
    """

    endpoint: str | None = None
    canary_percent: int = 10
    protocol: str = "v2"
    min_replicas: int = 1
    max_replicas: int = 1
    auth: str = "none"
    log_requests: bool = True
    request_log_sample: float = 1.0
    request_log_max_mb: int = 64
    scale_to_zero_after: int = 300
    kind: str = "predictive"
    llm: LLMOptions | None = None
    step: str | None = None
    profile: str | None = None
    predictor_source: str | None = None
    predictor_name: str | None = None
    tracking_uri: str | None = None
    cluster_tracking_uri: str | None = None
    kserve_deployment_mode: str | None = None
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    request_log_uri: str | None = None
    request_log_service_account: str | None = None

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise ServeOptionError(problem)

    def problem(self) -> str | None:
        """None when the options can work together, else the first reason they cannot."""
        if self.endpoint is not None:
            bad = check_endpoint_name(self.endpoint)
            if bad:
                return bad
        if not _whole(self.canary_percent, 0) or self.canary_percent > 100:
            return (
                f"canary_percent must be a whole number from 0 to 100 (got {self.canary_percent!r})"
            )
        if self.protocol not in PROTOCOLS:
            return f"protocol={self.protocol!r} must be 'v1' or 'v2'"
        if self.auth not in AUTH_MODES:
            return f"auth={self.auth!r} must be 'none' or 'token'"
        for option in ("min_replicas", "max_replicas"):
            if not _whole(getattr(self, option), 0):
                return f"{option} must be a whole number >= 0 (got {getattr(self, option)!r})"
        if self.max_replicas < max(1, self.min_replicas):
            return (
                f"max_replicas={self.max_replicas} must be at least 1 and at least "
                f"min_replicas={self.min_replicas} (min_replicas=0 scales to zero)"
            )
        return self._logging_problem() or self._kind_problem()

    def _logging_problem(self) -> str | None:
        if not isinstance(self.log_requests, bool):
            return f"log_requests must be True or False (got {self.log_requests!r})"
        sample = self.request_log_sample
        if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 < sample <= 1:
            return (
                f"request_log_sample must be a share of requests, 0 < x <= 1 (got {sample!r}; "
                f"to log nothing use log_requests=False)"
            )
        if not _whole(self.request_log_max_mb, 1):
            return (
                f"request_log_max_mb must be a whole number of MiB >= 1 "
                f"(got {self.request_log_max_mb!r})"
            )
        stz = self.scale_to_zero_after
        if not _whole(stz, MIN_SCALE_TO_ZERO_S) or stz > MAX_SCALE_TO_ZERO_S:
            return (
                f"scale_to_zero_after must be a whole number of seconds from "
                f"{MIN_SCALE_TO_ZERO_S} to {MAX_SCALE_TO_ZERO_S} (Knative's longest pod "
                f"retention) (got {stz!r})"
            )
        return None

    def _kind_problem(self) -> str | None:
        if self.kind not in KINDS:
            return f"kind={self.kind!r} must be one of {', '.join(map(repr, KINDS))}"
        if self.kind == "predictive":
            if self.llm is not None:
                return "LLM options need kind='llm' (this endpoint is kind='predictive')"
            return None
        if not isinstance(self.llm, LLMOptions):
            return "kind='llm' needs its LLM options"
        if self.predictor_source:
            return (
                "kind='llm' runs the model in KServe's Hugging Face runtime, so the function "
                "must be a stub (a docstring, '...' or 'pass'): put pre/post-processing in the "
                "client"
            )
        if self.protocol != "v2":
            return (
                f"protocol={self.protocol!r}: an LLM endpoint speaks the OpenAI API "
                f"(/openai/v1/...); drop the protocol option"
            )
        return self.llm.problem()

    @property
    def gpus(self) -> int:
        """GPUs the compute profile gives each replica."""
        resources = self.cluster.resources
        return resources.accelerator_count if resources.accelerator else 0

    def compute_problem(self) -> str | None:
        """What the compute profile cannot give these settings (None: nothing)."""
        if self.llm is None:
            return None
        tp = self.llm.tensor_parallel_size
        if tp > max(self.gpus, 1):
            return (
                f"tensor_parallel_size={tp} needs {tp} GPUs per replica, but compute profile "
                f"{self.profile or 'default'!r} gives {self.gpus}; use a profile with "
                f"accelerator_count >= {tp} or a smaller tensor_parallel_size"
            )
        return None

    def with_inputs(self, inputs: dict[str, Any]) -> ServeSettings:
        """These settings with the given inputs (the prebuilt ``deploy``'s) over them.

        Raises ServeOptionError for an input that cannot work.
        """
        given = {k: inputs[k] for k in OVERRIDABLE if inputs.get(k) is not None}
        sample = given.get("request_log_sample")
        if isinstance(sample, int) and not isinstance(sample, bool):
            given["request_log_sample"] = float(sample)  # KFP hands 1.0 over as 1
        return replace(self, **given) if given else self

    def deploy_spec(
        self, model_uri: str, storage: str, flavor: str, *, run_id: str | None = None
    ) -> DeploySpec:
        """The deployment the backends carry out (the endpoint must be set by now)."""
        if not self.endpoint:
            raise ServeOptionError("no endpoint to deploy to: give the step an endpoint name")
        requests, limits = self.cluster.resources.requests_and_limits()
        return DeploySpec(
            endpoint=self.endpoint,
            model_uri=model_uri,
            storage=storage,
            flavor=flavor,
            canary_percent=self.canary_percent,
            protocol=self.protocol,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            auth=self.auth,
            predictor_source=self.predictor_source,
            predictor_name=self.predictor_name,
            resources={k: v for k, v in (("requests", requests), ("limits", limits)) if v},
            node_selector=dict(self.cluster.node_selector),
            tolerations=[t.to_json() for t in self.cluster.tolerations],
            run_id=run_id,
            log_requests=self.log_requests,
            request_log_sample=float(self.request_log_sample),
            request_log_max_mb=self.request_log_max_mb,
            scale_to_zero_after=self.scale_to_zero_after,
            kind=self.kind,
            llm=self.llm,
            cost_per_hour=self.cluster.cost_per_hour,
            request_log_uri=self.request_log_uri,
            request_log_service_account=self.request_log_service_account,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON a launcher component carries (stable keys, unset values as null)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["llm"] = self.llm.to_json() if self.llm else None
        out["cluster"] = self.cluster.to_json()
        # Written only when set, so components compiled without them stay byte for byte.
        for key in _ONLY_WHEN_SET:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_json(cls, data: Any) -> ServeSettings:
        """Read what :meth:`to_json` wrote; an unknown key or a mistyped value is an error."""
        values = dict(known(_WHAT, data, {f.name for f in fields(cls)}))
        for key in (
            "endpoint",
            "step",
            "profile",
            "predictor_source",
            "predictor_name",
            "tracking_uri",
            "cluster_tracking_uri",
            "kserve_deployment_mode",
            *_ONLY_WHEN_SET,
        ):
            if key in values:
                values[key] = opt_str(_WHAT, key, values[key])
        for key in ("protocol", "auth", "kind"):
            if key in values and not isinstance(values[key], str):
                raise fail(_WHAT, key, "a string", values[key])
        try:
            if values.get("llm") is not None:
                values["llm"] = LLMOptions.from_json(values["llm"])
            cluster = values.get("cluster")
            if cluster is not None and not isinstance(cluster, dict):
                raise ValueError(f"cluster must be an object (got {cluster!r})")
            values["cluster"] = ClusterSettings.from_json(cluster)
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise SettingsError(f"{_WHAT}: {e}; {REBUILD}") from None
