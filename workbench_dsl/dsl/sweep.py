"""``@sweep``: a hyperparameter search over a trial function, as Optuna locally and Katib on a cluster.

The trial function takes the searched parameters (named in ``space``) plus any
upstream inputs, which every trial receives, and returns a dict of metrics. The
compiled launcher's interface is the function's, minus the searched
parameters, plus the outputs ``best_params``, ``best_value``, ``trials`` and,
when the function has an ``Output[Model]`` parameter, ``best_model``. A
``@train`` step can be swept too (``@sweep(...)`` above ``@train(...)``): each
trial then runs as that training job (a TrainJob on a cluster).
See https://www.kubeflow.org/docs/components/katib/overview/
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from workbench_dsl.backends.sweeper.base import (
    ALGORITHMS,
    EARLY_STOPPING,
    EARLY_STOPPING_SETTINGS,
    GOALS,
    METRIC_NAME,
    EarlyStopping,
    Param,
    SweepSettings,
)
from workbench_dsl.config import Config
from workbench_dsl.dsl import space as _space
from workbench_dsl.dsl._cluster import ClusterWorkStep
from workbench_dsl.dsl._options import StepOptions
from workbench_dsl.dsl._where import function_location
from workbench_dsl.dsl.step import Step
from workbench_dsl.dsl.train import TrainStep
from workbench_dsl.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent

    from workbench_dsl.runtime.settings import SweepStepSettings

P = ParamSpec("P")
R = TypeVar("R")

#: The outputs every sweep has, as the launcher's return annotation.
OUTPUTS = "NamedTuple('SweepOutputs', [('best_params', dict), ('best_value', float)])"
_RESERVED = ("trials", "best_model", "best_params", "best_value")


def _whole(step: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PipelineDefinitionError(
            f"{step}: {name} must be a whole number >= {minimum} (got {value!r})"
        )
    return value


def _early_stopping(step: str, value: Any) -> EarlyStopping | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"algorithm": value}
    if not isinstance(value, Mapping) or "algorithm" not in value:
        raise PipelineDefinitionError(
            f"{step}: early_stopping must be 'medianstop' or a dict such as "
            f"{{'algorithm': 'medianstop', 'start_step': 4}} (got {value!r})"
        )
    name = value["algorithm"]
    if name == "hyperband":
        raise PipelineDefinitionError(
            f"{step}: early_stopping='hyperband' is not offered: Katib has no hyperband "
            f"early-stopping rule (its hyperband is a search algorithm over a resource "
            f"parameter), so it could not run the same way on a cluster; use 'medianstop'"
        )
    if name not in EARLY_STOPPING:
        raise PipelineDefinitionError(
            f"{step}: unknown early_stopping {name!r} (known: {', '.join(EARLY_STOPPING)})"
        )
    defaults = EARLY_STOPPING_SETTINGS[name]
    settings = dict(defaults)
    for k, v in value.items():
        if k == "algorithm":
            continue
        if k not in defaults:
            raise PipelineDefinitionError(
                f"{step}: unknown {name} setting {k!r} (known: {', '.join(defaults)})"
            )
        settings[k] = _whole(step, f"early_stopping {k}", v, 1)
    return EarlyStopping(name, settings)


def _check_space(
    step: str, fn: Callable[..., Any], space: Any, algorithm: str, where: str
) -> dict[str, Any]:
    import inspect

    domains = (_space.Uniform, _space.LogUniform, _space.Integer, _space.Categorical, _space.Grid)
    if not isinstance(space, Mapping) or not space:
        raise PipelineDefinitionError(
            f"{step}: space must be a non-empty dict such as "
            f"{{'lr': space.loguniform(1e-4, 1e-1)}} (got {space!r})"
        )
    params = inspect.signature(fn).parameters
    for name, domain in space.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise PipelineDefinitionError(f"{step}: space key {name!r} is not a parameter name")
        if not isinstance(domain, domains):
            raise PipelineDefinitionError(
                f"{step}: space[{name!r}] must be space.uniform(...), loguniform(...), "
                f"integer(...), categorical([...]) or grid([...]) (got {domain!r})"
            )
        if name not in params:
            known = ", ".join(params) or "none"
            raise PipelineDefinitionError(
                f"{step}: space names {name!r}, which is not a parameter of "
                f"{fn.__name__}() (parameters: {known})"
            )
        if algorithm == "grid" and domain.grid_values() is None:
            raise PipelineDefinitionError(
                f"{step}: algorithm='grid' needs a finite set of values, but space[{name!r}] "
                f"is continuous; give uniform(..., step=...) or use space.grid([...])"
            )
        if algorithm == "cmaes" and isinstance(domain, _space.Categorical | _space.Grid):
            raise PipelineDefinitionError(
                f"{step}: algorithm='cmaes' searches numeric ranges only, but space[{name!r}] "
                f"is a list of values"
            )
        _check_katib_sampling(where, name, domain, algorithm)
    numeric = [n for n, d in space.items() if isinstance(d, _space.Uniform | _space.LogUniform)]
    numeric += [n for n, d in space.items() if isinstance(d, _space.Integer)]
    if algorithm == "cmaes" and len(numeric) < 2:
        # kubeflow/katib pkg/suggestion/v1beta1/goptuna/service.go ValidateAlgorithmSettings
        raise PipelineDefinitionError(
            f"{where}: algorithm='cmaes' needs two or more numeric parameters (Katib's CMA-ES "
            f"refuses a one-dimensional space); add one or use 'tpe'"
        )
    return dict(space)


def _check_katib_sampling(step: str, name: str, domain: Any, algorithm: str) -> None:
    """Refuse a parameter Katib's suggestion service would sample differently from Optuna.

    Katib serves ``cmaes`` and ``sobol`` with goptuna, which ignores the
    distribution (log-uniform ranges are sampled uniformly:
    kubeflow/katib pkg/suggestion/v1beta1/goptuna/converter.go), and
    ``bayesianoptimization`` with scikit-optimize, which samples every float range
    log-uniformly and ignores integer steps and logs
    (pkg/suggestion/v1beta1/skopt/base_service.py).
    """
    log = isinstance(domain, _space.LogUniform) or (
        isinstance(domain, _space.Integer) and domain.log
    )
    if algorithm in ("cmaes", "sobol") and log:
        raise PipelineDefinitionError(
            f"{step}: algorithm={algorithm!r} samples space[{name!r}] uniformly on Katib (its "
            f"goptuna service ignores log scales), unlike a local run; use a linear range or "
            f"algorithm='tpe'"
        )
    if algorithm == "bayesianoptimization":
        if isinstance(domain, _space.Uniform):
            raise PipelineDefinitionError(
                f"{step}: algorithm='bayesianoptimization' samples every float range "
                f"log-uniformly on Katib (scikit-optimize), so space[{name!r}] = uniform(...) "
                f"would be searched differently there; use space.loguniform(...) or 'tpe'"
            )
        if isinstance(domain, _space.Integer) and (domain.log or domain.step != 1):
            raise PipelineDefinitionError(
                f"{step}: algorithm='bayesianoptimization' ignores integer steps and log scales "
                f"on Katib (scikit-optimize), so space[{name!r}] would be searched differently "
                f"there; use integer(low, high) or 'tpe'"
            )


def _check_metric_name(step: str, what: str, name: Any) -> str:
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        raise PipelineDefinitionError(
            f"{step}: {what} {name!r} cannot be collected on Katib (its stdout collector reads "
            f"names of letters, digits, '_', '-' and '|'); rename the metric, e.g. "
            f"{_suggest_metric(name)!r}"
        )
    return name


def _suggest_metric(name: Any) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_|-]+", "_", str(name)).strip("_") or "metric"


class SweepStep(ClusterWorkStep[P, R]):
    """A ``@sweep`` step: the trial function, its search space and the search settings."""

    kind = "sweep"

    def __init__(
        self,
        fn: Callable[P, R],
        options: StepOptions,
        *,
        space: Mapping[str, _space.Domain],
        settings: SweepSettings,
        train: TrainStep[Any, Any] | None = None,
    ) -> None:
        super().__init__(fn, options)
        self.space: dict[str, _space.Domain] = dict(space)
        #: The search, as the launcher and the sweepers read it back.
        self.settings = settings
        self.train = train

    def _model_param(self, hints: dict[str, Any]) -> str | None:
        from workbench_dsl.dsl._cluster import artifact_kind

        where = f"{function_location(self.fn)}: @sweep {self.name}()"
        model = None
        for name, ann in hints.items():
            if name == "return":
                continue
            kind = artifact_kind(ann)
            if name in self.space and kind is not None:
                raise PipelineDefinitionError(
                    f"{where}: searched parameter {name!r} is an artifact; search plain values"
                )
            if kind == "output":
                inner = getattr(ann, "__args__", (None,))[0]
                if getattr(inner, "schema_title", None) != "system.Model" or model is not None:
                    raise PipelineDefinitionError(
                        f"{where}: a trial returns its metrics as a dict and may write one "
                        f"Output[Model] (the sweep's best_model); {name!r} is another output"
                    )
                model = name
        for name in _RESERVED:
            if name in hints and name not in self.space:
                raise PipelineDefinitionError(
                    f"{where}: parameter {name!r} clashes with the sweep's output of that name"
                )
        return model

    def launch_settings(self, config: Config, model_param: str | None) -> SweepStepSettings:
        """The settings the launcher reads at run time (baked into the component as JSON)."""
        from workbench_dsl.dsl._cluster import cluster_settings
        from workbench_dsl.runtime.settings import SweepStepSettings, TrainSettings

        profile = config.profile(self.options.profile)
        preset = config.preset(self.options.preset) if self.options.preset else None
        return SweepStepSettings(
            search=self.settings,
            step=self.name,
            model_param=model_param,
            train=self.train.job_config(self.train.config) if self.train else None,
            trial=TrainSettings(
                env=dict(self.options.env), cluster=cluster_settings(config, profile, preset)
            ),
        )

    def launch_config(self, config: Config, model_param: str | None) -> dict[str, Any]:
        """The JSON the compiled component carries: :meth:`launch_settings`, written out."""
        return self.launch_settings(config, model_param).to_json()

    def _build_component(self, config: Config) -> BaseComponent:
        from workbench_dsl.dsl._cluster import check_no_paths, resolved_hints
        from workbench_dsl.dsl._launcher import build_launcher, signature_source

        hints = resolved_hints(self.fn)
        check_no_paths(self.fn, self.kind, hints)
        ret = hints.get("return")
        if (
            ret is not None
            and ret is not type(None)
            and getattr(ret, "__origin__", ret) is not dict
        ):
            raise PipelineDefinitionError(
                f"{function_location(self.fn)}: @sweep {self.name}() must return a dict of "
                f"metrics such as {{{self.settings.objective!r}: 0.93}} (annotated {ret!r})"
            )
        model_param = self._model_param(hints)
        sig = signature_source(self.fn)
        params = ["trials: Output[Dataset]"]
        if model_param:
            params.append("best_model: Output[Model]")
        params += [
            text for n, text in sig.params.items() if n not in self.space and n != model_param
        ]
        preset = config.preset(self.options.preset) if self.options.preset else None
        step_config = self.launch_config(config, model_param)
        return build_launcher(
            self.fn,
            kind="sweep",
            params=params,
            returns=OUTPUTS,
            config=step_config,
            image=config.runtime_image,
            packages=list(preset.packages) if preset else (),
            pip_index_urls=list(preset.pip_index_urls) if preset else (),
        )


class _SweepDecorator(Protocol):
    @overload
    def __call__(self, fn: Step[P, R], /) -> SweepStep[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> SweepStep[P, R]: ...


def sweep(
    *,
    space: Mapping[str, _space.Domain],
    objective: str,
    goal: str = "maximize",
    algorithm: str = "tpe",
    max_trials: int = 20,
    parallel_trials: int = 2,
    max_failed_trials: int | None = None,
    early_stopping: str | Mapping[str, Any] | None = None,
    seed: int | None = None,
    metrics: Sequence[str] = (),
    profile: str | None = None,
    preset: str | None = None,
    env: dict[str, Any] | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
) -> _SweepDecorator:
    """Make a trial function a hyperparameter sweep step.

    Args:
        space: Searched parameter -> ``space.uniform(...)``, ``loguniform``,
            ``integer``, ``categorical`` or ``grid``.
        objective: The metric (a key of the dict the trial returns) to optimise.
        goal: ``"maximize"`` or ``"minimize"``.
        algorithm: Katib's name: ``random``, ``grid``, ``tpe``, ``multivariate-tpe``,
            ``cmaes``, ``sobol`` or ``bayesianoptimization``.
        max_trials: Trials to run in all (failed and early-stopped ones count).
        parallel_trials: Trials running at once.
        max_failed_trials: Fail the sweep when more trials than this fail (None: no limit).
        early_stopping: ``"medianstop"`` (or ``{"algorithm": "medianstop",
            "min_trials_required": 3, "start_step": 4}``); fed by ``report()``.
        seed: Seed of the search algorithm, for repeatable suggestions.
        metrics: Other metrics the trial returns to record beside the objective (Katib
            records only metrics named up front, so a local sweep keeps the same ones).
        profile: Compute of each trial, by name from ``workbench.toml``.
        preset: Packages the trial code needs, by name.
        env: Environment variables for the trials.
        cache: Reuse a previous result when the inputs are the same.
        retries: How many times to retry a failed sweep (a retry continues the study).
        retry_backoff: Wait before the first retry, doubling after.
        timeout: Fail the whole sweep when it runs longer (seconds or ``"2h"``).
    """

    def wrap(f: Any) -> Any:
        train_step = f if isinstance(f, TrainStep) else None
        if isinstance(f, Step) and train_step is None:
            raise PipelineDefinitionError(
                f"@sweep goes on a plain function or a @train step, not on a @{f.kind} step"
            )
        fn = train_step.fn if train_step else f
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise PipelineDefinitionError(
                f"@sweep decorates a function defined with def (got {f!r})"
            )
        step = fn.__name__
        where = f"{function_location(fn)}: {step}"
        if algorithm not in ALGORITHMS:
            raise PipelineDefinitionError(
                f"{step}: unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})"
            )
        checked = _check_space(step, fn, space, algorithm, where)
        if not isinstance(objective, str) or not objective.strip():
            raise PipelineDefinitionError(
                f"{step}: objective must name a metric the trial returns (got {objective!r})"
            )
        if goal not in GOALS:
            raise PipelineDefinitionError(
                f"{step}: goal must be 'maximize' or 'minimize' (got {goal!r})"
            )
        _check_metric_name(where, "objective", objective)
        if isinstance(metrics, str) or not isinstance(metrics, Sequence):
            raise PipelineDefinitionError(
                f"{where}: metrics must be a list of metric names (got {metrics!r})"
            )
        recorded = [_check_metric_name(where, "metric", m) for m in metrics]
        recorded = [m for m in dict.fromkeys(recorded) if m != objective]
        settings = SweepSettings(
            objective=objective,
            goal=goal,
            algorithm=algorithm,
            # By name: the compiled component's JSON sorts its keys, and the launcher
            # reads the parameters back in that order.
            params=tuple(Param.from_spec(n, d.to_spec()) for n, d in sorted(checked.items())),
            max_trials=_whole(step, "max_trials", max_trials, 1),
            parallel_trials=_whole(step, "parallel_trials", parallel_trials, 1),
            max_failed_trials=None
            if max_failed_trials is None
            else _whole(step, "max_failed_trials", max_failed_trials, 0),
            early_stopping=_early_stopping(step, early_stopping),
            seed=None if seed is None else _whole(step, "seed", seed, 0),
            metrics=tuple(recorded),
        )
        options = StepOptions.build(
            step,
            preset=preset,
            profile=profile,
            cache=cache,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            env=env,
        )
        return SweepStep(fn, options, space=checked, settings=settings, train=train_step)

    return wrap  # type: ignore[return-value]
