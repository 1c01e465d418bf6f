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
import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, ParamSpec, TypeVar, overload

from workbench_dsl.config import Config, Profile, load_config
from workbench_dsl.dsl._options import StepOptions
from workbench_dsl.dsl._where import function_location
from workbench_dsl.dsl.step import Step, config_for
from workbench_dsl.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent

P = ParamSpec("P")
R = TypeVar("R")

PROTOCOLS = ("v1", "v2")
AUTH_MODES = ("none", "token")
OUTPUTS = "NamedTuple('Outputs', [('url', str), ('revision', str)])"


class ServeStep(Step[P, R]):
    """A ``@serve`` step (or the prebuilt ``deploy``): a launcher whose input is ``model_uri``."""

    kind: ClassVar[str] = "serve"

    def __init__(
        self,
        target: Callable[P, R],
        options: StepOptions,
        settings: dict[str, Any],
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
        return f"<{self.kind} step {self.name} at {_location(self.fn)}>"

    @property
    def config(self) -> Config:
        if self._prebuilt:
            return load_config(Path.cwd())  # the prebuilt step belongs to no project file
        if inspect.isclass(self.fn):
            source = inspect.getsourcefile(self.fn)
            return load_config(Path(source).resolve().parent if source else None)
        return config_for(self.fn)

    def _build_component(self, config: Config) -> BaseComponent:
        from workbench_dsl.dsl._launcher import build_launcher

        profile = config.profile(self.settings.get("profile"))
        mode = self._deployment_mode(config)
        step_config = {
            **{k: v for k, v in self.settings.items() if k != "profile"},
            "step": self.name,
            "tracking_uri": config.get("registry", "tracking_uri"),
            "cluster_tracking_uri": config.get("registry", "cluster_tracking_uri"),
            "namespace": config.get("cluster", "namespace"),
            "runtime_image": config.runtime_image,
            "kserve_deployment_mode": mode,
            **_compute(profile),
        }
        if not self._prebuilt:
            step_config["predictor_source"] = predictor_source(self.fn)
            step_config["predictor_name"] = self.fn.__name__
        preset = config.preset(self.options.preset)
        return build_launcher(
            _deploy_model if self._prebuilt else _serve_model,
            kind="serve",
            params=self.params,
            returns=OUTPUTS,
            config=step_config,
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
        where = f"{_location(self.fn)}: @serve {self.name}()"
        if mode not in DEPLOYMENT_MODES:
            raise PipelineDefinitionError(
                f"{where}: [cluster] kserve_deployment_mode={mode!r} in workbench.toml must be "
                f"one of {', '.join(DEPLOYMENT_MODES)}"
            )
        if mode == "Standard" and not self._prebuilt:
            if self.settings["min_replicas"] == 0:
                raise PipelineDefinitionError(
                    f"{where}: min_replicas=0 (scale to zero) needs KServe's Knative mode, but "
                    f"workbench.toml sets kserve_deployment_mode='Standard'; use min_replicas>=1"
                )
            if self.settings["canary_percent"] < 100:
                raise PipelineDefinitionError(
                    f"{where}: canary_percent={self.settings['canary_percent']} needs KServe's "
                    f"Knative mode (Standard serves one revision at a time), but workbench.toml "
                    f"sets kserve_deployment_mode='Standard'; use canary_percent=100"
                )
        return mode


def _location(obj: Any) -> str:
    if inspect.isclass(obj):
        try:
            return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
        except (OSError, TypeError):
            return obj.__qualname__  # type: ignore[no-any-return]
    return function_location(obj)


def _compute(profile: Profile) -> dict[str, Any]:
    """The endpoint's resources and scheduling from a compute profile (for the cluster)."""
    requests, limits = profile.resources.requests_and_limits()
    return {
        "resources": {k: v for k, v in (("requests", requests), ("limits", limits)) if v},
        "node_selector": dict(profile.node_selector),
        "tolerations": [t.to_json() for t in profile.tolerations],
    }


def predictor_source(obj: Any) -> str:
    """The predictor's ``def`` or ``class`` and body, dedented, decorators dropped."""
    try:
        src = inspect.getsource(obj)
    except (OSError, TypeError) as e:
        raise PipelineDefinitionError(
            f"{obj.__name__}: cannot read the predictor's source ({e}); define it in a file"
        ) from None
    lines = textwrap.dedent(src).split("\n")
    body = itertools.dropwhile(lambda x: not x.startswith(("def ", "class ")), lines)
    return "\n".join(body)


def _check_predictor(obj: Any, step: str) -> None:
    if inspect.isclass(obj):
        if not callable(getattr(obj, "predict", None)):
            raise PipelineDefinitionError(
                f"{step}: a predictor class needs a predict(self, instances) method "
                f"(and optionally load(self, model_dir))"
            )
        return
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        raise PipelineDefinitionError(
            f"@serve decorates a function predict(model, instances) or a class with load and "
            f"predict (got {obj!r}; async functions are not supported)"
        )
    params = [
        p
        for p in inspect.signature(obj).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) != 2:
        raise PipelineDefinitionError(
            f"{function_location(obj)}: {step}: a predictor function takes (model, instances) "
            f"(it takes {len(params)} parameter{'s' if len(params) != 1 else ''})"
        )


def validate_settings(
    step: str,
    *,
    endpoint: str,
    canary_percent: int,
    protocol: str,
    min_replicas: int,
    max_replicas: int,
    profile: str | None,
    auth: str,
) -> dict[str, Any]:
    """Check ``@serve``'s own options; errors name the step and the option."""
    from workbench_dsl.backends.deployer import check_endpoint_name

    problem = check_endpoint_name(endpoint)
    if problem:
        raise PipelineDefinitionError(f"{step}: {problem}")
    if (
        isinstance(canary_percent, bool)
        or not isinstance(canary_percent, int)
        or not 0 <= canary_percent <= 100
    ):
        raise PipelineDefinitionError(
            f"{step}: canary_percent must be a whole number from 0 to 100 (got {canary_percent!r})"
        )
    if protocol not in PROTOCOLS:
        raise PipelineDefinitionError(f"{step}: protocol={protocol!r} must be 'v1' or 'v2'")
    if auth not in AUTH_MODES:
        raise PipelineDefinitionError(f"{step}: auth={auth!r} must be 'none' or 'token'")
    for option, value in (("min_replicas", min_replicas), ("max_replicas", max_replicas)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PipelineDefinitionError(
                f"{step}: {option} must be a whole number >= 0 (got {value!r})"
            )
    if max_replicas < max(1, min_replicas):
        raise PipelineDefinitionError(
            f"{step}: max_replicas={max_replicas} must be at least 1 and at least "
            f"min_replicas={min_replicas} (min_replicas=0 scales to zero)"
        )
    if profile is not None and (not isinstance(profile, str) or not profile):
        raise PipelineDefinitionError(f"{step}: profile must be a name from workbench.toml")
    return {
        "endpoint": endpoint,
        "canary_percent": canary_percent,
        "protocol": protocol,
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "auth": auth,
        "profile": profile,
    }


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
    preset: str | None = None,
    cache: bool = False,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> ServeStep[P, R] | Callable[[Callable[P, R]], ServeStep[P, R]]:
    """Make a predictor a step that deploys a model version to an endpoint.

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
        profile: Compute for the endpoint on a cluster (resources, scheduling), by name.
        auth: ``"token"`` to require a bearer token (created once, shown once, stored hashed).
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
        if endpoint is None:
            raise PipelineDefinitionError(
                f"{step}: @serve() missing required argument 'endpoint' (e.g. "
                f"@serve(endpoint='churn'))"
            )
        _check_predictor(f, step)
        settings = validate_settings(
            step,
            endpoint=endpoint,
            canary_percent=canary_percent,
            protocol=protocol,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            profile=profile,
            auth=auth,
        )
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
) -> DeployOutputs:
    """Serve a registered MLflow model (sklearn, pytorch, pyfunc) at an endpoint, with no user code.

    The endpoint's first revision takes all traffic; a later one becomes the canary
    with ``canary_percent`` of the requests.
    """
    from workbench_dsl.runtime.serve import deploy_model

    settings = {
        "endpoint": endpoint,
        "canary_percent": canary_percent,
        "protocol": protocol,
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "auth": auth,
    }
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
]

#: The prebuilt deploy step: ``deploy(model_uri=..., endpoint="churn", canary_percent=10)``.
deploy: ServeStep[..., DeployOutputs] = ServeStep(
    _deploy_model,
    StepOptions(cache=False),
    {"profile": None},
    params=_DEPLOY_PARAMS,
    name="deploy",
)
