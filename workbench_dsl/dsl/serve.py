"""``@serve`` and the prebuilt ``deploy``: a registered model behind an endpoint, with canary rollouts.

``@serve`` decorates a predictor: a function ``predict(model, instances)`` or a
class with ``load(self, model_dir)`` and ``predict(self, instances)``. Called in
a pipeline with ``model_uri=`` (e.g. a ``@register`` step's output), it deploys
that model version: the endpoint's first revision takes all traffic, a later
one becomes the canary with ``canary_percent`` of the requests. ``deploy`` does
the same for standard MLflow flavors with no user code. Outputs: ``url`` and
``revision``. Locally: a KServe model server on 127.0.0.1; on a cluster: a
KServe InferenceService (KServe canaries are hand-edited today: kserve#5181).
See https://kserve.github.io/website/latest/modelserving/v1beta1/rollout/canary/
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    NamedTuple,
    ParamSpec,
    TypeVar,
    overload,
)

from workbench_dsl.compute import ClusterSettings
from workbench_dsl.config import Config, load_config
from workbench_dsl.dsl._llm import check_context_length, llm_options
from workbench_dsl.dsl._options import StepOptions
from workbench_dsl.dsl._predictor import (
    check_llm_stub,
    check_predictor,
    location,
    predictor_source,
)
from workbench_dsl.dsl.step import Step, config_for
from workbench_dsl.errors import PipelineDefinitionError
from workbench_dsl.runtime.serve_settings import ServeOptionError, ServeSettings

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent
    from kfp.dsl.pipeline_task import PipelineTask

P = ParamSpec("P")
R = TypeVar("R")

OUTPUTS = "NamedTuple('Outputs', [('url', str), ('revision', str)])"


class ServeStep(Step[P, R]):
    """A ``@serve`` step (or the prebuilt ``deploy``): a launcher whose input is ``model_uri``."""

    kind: ClassVar[str] = "serve"

    def __init__(
        self,
        target: Callable[P, R],
        options: StepOptions,
        settings: ServeSettings,
        *,
        params: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        if inspect.isclass(target):
            # Step wants a function; a predictor may be a class, so set up the same fields.
            self.fn = target  # type: ignore[assignment]
            self.options = options
            self.name = target.__name__
            self._component = None
            self.__doc__ = target.__doc__
            self.__wrapped__ = target
        else:
            super().__init__(target, options)
        self.settings = settings
        self.params = params or ["model_uri: str"]
        if name:
            self.name = name
        self._prebuilt = params is not None

    def __repr__(self) -> str:
        return f"<{self.kind} step {self.name} at {location(self.fn)}>"

    @property
    def config(self) -> Config:
        if self._prebuilt:
            return load_config(Path.cwd())  # the prebuilt step belongs to no project file
        if inspect.isclass(self.fn):
            source = inspect.getsourcefile(self.fn)
            return load_config(Path(source).resolve().parent if source else None)
        return config_for(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineTask:
        if self.settings.llm is not None:
            check_context_length(self.name, self.settings.llm, kwargs.get("model_uri"))
        return super().__call__(*args, **kwargs)

    def launcher_settings(self, config: Config) -> ServeSettings:
        """The settings the launcher reads: the decorator's, with the project's compute and cluster.

        Raises PipelineDefinitionError (``file:line``) when the compute profile or the
        cluster's KServe mode cannot give what the options ask for.
        """
        profile = config.profile(self.settings.profile)
        predictive = self.settings.kind == "predictive" and not self._prebuilt
        settings = replace(
            self.settings,
            step=None if self._prebuilt else self.name,
            profile=profile.name,
            predictor_source=predictor_source(self.fn) if predictive else None,
            predictor_name=self.fn.__name__ if predictive else None,
            tracking_uri=config.get("registry", "tracking_uri"),
            cluster_tracking_uri=config.get("registry", "cluster_tracking_uri"),
            kserve_deployment_mode=self._deployment_mode(config),
            request_log_uri=config.get("cluster", "request_log_uri"),
            request_log_service_account=config.get("cluster", "request_log_service_account"),
            # The profile's cost per hour rides along: the live $/hour of endpoints.
            cluster=ClusterSettings.for_profile(
                profile, image=config.runtime_image, namespace=config.get("cluster", "namespace")
            ),
        )
        problem = settings.compute_problem()
        if problem:
            raise PipelineDefinitionError(f"{self._where()}: {problem}")
        return settings

    def _where(self) -> str:
        return f"{location(self.fn)}: @serve {self.name}()"

    def _build_component(self, config: Config) -> BaseComponent:
        from workbench_dsl.dsl._launcher import build_launcher

        preset = config.preset(self.options.preset)
        return build_launcher(
            _deploy_model if self._prebuilt else _serve_model,
            kind="serve",
            params=self.params,
            returns=OUTPUTS,
            config=self.launcher_settings(config).to_json(),
            image=config.runtime_image,
            packages=preset.packages,
            pip_index_urls=preset.pip_index_urls,
            name=self.name,
        )

    def _deployment_mode(self, config: Config) -> str:
        """``[cluster] kserve_deployment_mode``, refused here when the step's options need the other."""
        from workbench_dsl.backends.deployer.kubernetes import (
            DEFAULT_DEPLOYMENT_MODE,
            DEPLOYMENT_MODES,
        )

        mode = str(config.get("cluster", "kserve_deployment_mode") or DEFAULT_DEPLOYMENT_MODE)
        where = self._where()
        if mode not in DEPLOYMENT_MODES:
            raise PipelineDefinitionError(
                f"{where}: [cluster] kserve_deployment_mode={mode!r} in workbench.toml must be "
                f"one of {', '.join(DEPLOYMENT_MODES)}"
            )
        if mode == "Standard" and not self._prebuilt:
            if self.settings.min_replicas == 0:
                raise PipelineDefinitionError(
                    f"{where}: min_replicas=0 (scale to zero) needs KServe's Knative mode, but "
                    f"workbench.toml sets kserve_deployment_mode='Standard'; use min_replicas>=1"
                )
            if self.settings.canary_percent < 100:
                raise PipelineDefinitionError(
                    f"{where}: canary_percent={self.settings.canary_percent} needs KServe's "
                    f"Knative mode (Standard serves one revision at a time), but workbench.toml "
                    f"sets kserve_deployment_mode='Standard'; use canary_percent=100"
                )
        return mode


@overload
def serve(fn: Callable[P, R], /) -> ServeStep[P, R]: ...


@overload
def serve(
    fn: None = None,
    /,
    *,
    endpoint: str,
    canary_percent: int = 10,
    protocol: str = "v2",
    min_replicas: int = 1,
    max_replicas: int = 1,
    profile: str | None = None,
    auth: str = "none",
    log_requests: bool = True,
    request_log_sample: float = 1.0,
    request_log_max_mb: int = 64,
    scale_to_zero_after: int = 300,
    kind: Literal["predictive", "llm"] = "predictive",
    max_model_len: int | None = None,
    max_batch_size: int = 8,
    batch_wait_ms: int = 10,
    tensor_parallel_size: int = 1,
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto",
    preset: str | None = None,
    cache: bool = False,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> Callable[[Callable[P, R]], ServeStep[P, R]]: ...


def serve(
    fn: Callable[P, R] | None = None,
    /,
    *,
    endpoint: str | None = None,
    canary_percent: int = 10,
    protocol: str = "v2",
    min_replicas: int = 1,
    max_replicas: int = 1,
    profile: str | None = None,
    auth: str = "none",
    log_requests: bool = True,
    request_log_sample: float = 1.0,
    request_log_max_mb: int = 64,
    scale_to_zero_after: int = 300,
    kind: Literal["predictive", "llm"] = "predictive",
    max_model_len: int | None = None,
    max_batch_size: int = 8,
    batch_wait_ms: int = 10,
    tensor_parallel_size: int = 1,
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto",
    preset: str | None = None,
    cache: bool = False,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> ServeStep[P, R] | Callable[[Callable[P, R]], ServeStep[P, R]]:
    """Make a predictor (or an LLM endpoint's stub) a step that deploys a model version.

    Call the step in a pipeline with ``model_uri=`` (``models:/NAME/VERSION``).
    Outputs: ``url`` (where to post predictions) and ``revision``.

    Args:
        endpoint: The endpoint's name (lowercase letters, digits, '-').
        canary_percent: Share of requests for a new revision while the previous one
            still serves (the first deployment takes 100%); promote or roll back with
            ``workbench endpoints promote|rollback NAME``.
        protocol: ``"v2"`` (Open Inference Protocol) or ``"v1"`` for the returned URL
            and the cluster's ``protocolVersion``; the local server answers both.
        min_replicas: Replicas on a cluster (0 scales to zero).
        max_replicas: Replicas at most on a cluster.
        profile: Compute for the endpoint (resources, GPUs, scheduling), by name.
        auth: ``"token"`` to require a bearer token (created once, shown once, stored hashed).
        log_requests: Keep a log of requests and responses (local endpoints).
        request_log_sample: The share of requests logged, 0 < x <= 1.
        request_log_max_mb: The request log's size at most, in MiB (older entries go).
        scale_to_zero_after: Seconds an endpoint with ``min_replicas=0`` stays idle before
            its model server stops (>= 10; on a cluster Knative's pod retention period).
        kind: ``"predictive"`` (a predictor, or a standard flavor) or ``"llm"`` (a
            generative Transformers model behind the OpenAI-compatible API; the
            decorated function is a stub: a docstring, ``...`` or ``pass``).
        max_model_len: LLM only: tokens of prompt and completion at most (None: the
            model's own context length).
        max_batch_size: LLM only: sequences generated concurrently (1: no batching).
        batch_wait_ms: LLM only: how long to wait to fill a batch.
        tensor_parallel_size: LLM only: GPUs one replica shards the model over (at most
            the profile's GPUs).
        dtype: LLM only: ``"auto"`` (the model's own), ``"float32"``, ``"float16"`` or
            ``"bfloat16"``.
        preset: Packages the step installs on top of the runtime image (by name).
        cache: Reuse an earlier result (off: a deployment is an action, and redeploying
            the same model is a no-op anyway).
        retries: Retries of a failed attempt.
        retry_backoff: Wait before the first retry, doubling after.
        timeout: Fail an attempt that runs longer.
        env: Environment variables for the step.
    """

    def wrap(f: Callable[P, R]) -> ServeStep[P, R]:
        step = getattr(f, "__name__", "step")
        where = f"{location(f)}: {step}"
        if endpoint is None:
            raise PipelineDefinitionError(
                f"{where}: @serve() missing required argument 'endpoint' (e.g. "
                f"@serve(endpoint='churn'))"
            )
        if kind == "llm":
            check_llm_stub(f, step)
        else:
            check_predictor(f, step)
        if profile is not None and (not isinstance(profile, str) or not profile):
            raise PipelineDefinitionError(f"{where}: profile must be a name from workbench.toml")
        knobs = {
            "max_model_len": max_model_len,
            "max_batch_size": max_batch_size,
            "batch_wait_ms": batch_wait_ms,
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
        }
        try:
            settings = ServeSettings(
                endpoint=endpoint,
                canary_percent=canary_percent,
                protocol=protocol,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                auth=auth,
                log_requests=log_requests,
                request_log_sample=request_log_sample,
                request_log_max_mb=request_log_max_mb,
                scale_to_zero_after=scale_to_zero_after,
                kind=kind,
                llm=llm_options(kind, knobs, where),
                profile=profile,
            )
        except ServeOptionError as e:
            raise PipelineDefinitionError(f"{where}: {e}") from None
        # The profile is the endpoint's compute; the launcher itself runs on the default.
        options = StepOptions.build(
            step,
            preset=preset,
            cache=cache,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            env=env,
        )
        return ServeStep(f, options, settings)

    if fn is not None:
        return wrap(fn)
    return wrap


class DeployOutputs(NamedTuple):
    url: str
    revision: str


def _serve_model() -> None:
    """Serve a model version at an endpoint (the predictor's source is in the step's config)."""


def _deploy_model(
    model_uri: str,
    endpoint: str,
    canary_percent: int = 10,
    protocol: str = "v2",
    min_replicas: int = 1,
    max_replicas: int = 1,
    auth: str = "none",
    log_requests: bool = True,
    request_log_sample: float = 1.0,
    request_log_max_mb: int = 64,
    scale_to_zero_after: int = 300,
) -> DeployOutputs:
    """Serve a registered MLflow model (sklearn, pytorch, pyfunc) at an endpoint, with no user code.

    The endpoint's first revision takes all traffic; a later one becomes the canary
    with ``canary_percent`` of the requests.
    """
    from workbench_dsl.runtime.serve import deploy_model
    from workbench_dsl.runtime.serve_settings import ServeSettings

    settings = ServeSettings(
        endpoint=endpoint,
        canary_percent=canary_percent,
        protocol=protocol,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        auth=auth,
        log_requests=log_requests,
        request_log_sample=request_log_sample,
        request_log_max_mb=request_log_max_mb,
        scale_to_zero_after=scale_to_zero_after,
    )
    url, revision = deploy_model(model_uri, settings)
    return DeployOutputs(url, revision)


_DEPLOY_PARAMS = [
    "model_uri: str",
    "endpoint: str",
    "canary_percent: int = 10",
    "protocol: str = 'v2'",
    "min_replicas: int = 1",
    "max_replicas: int = 1",
    "auth: str = 'none'",
    "log_requests: bool = True",
    "request_log_sample: float = 1.0",
    "request_log_max_mb: int = 64",
    "scale_to_zero_after: int = 300",
]

#: The prebuilt deploy step: ``deploy(model_uri=..., endpoint="churn", canary_percent=10)``.
deploy: ServeStep[..., DeployOutputs] = ServeStep(
    _deploy_model,
    StepOptions(cache=False),
    ServeSettings(),
    params=_DEPLOY_PARAMS,
    name="deploy",
)
