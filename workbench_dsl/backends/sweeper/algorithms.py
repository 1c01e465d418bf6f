"""Katib's algorithm and early-stopping names, as Optuna samplers and pruners (locally) and Katib settings.

The mapping follows Katib's own suggestion services (katib-config.yaml); see
``../shared/notes-katib-optuna.md``. A sampler whose optional package is
missing fails here, before any trial runs, with the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

from workbench_dsl.backends.sweeper.base import Param, SweepSettings

_TORCH_EXTRA = "pip install 'workbench-dsl[torch]'"


class MissingPackage(ImportError):
    """An algorithm needs an optional package that is not installed."""


def _require(module: str, algorithm: str, fix: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingPackage(
            f"algorithm={algorithm!r} needs the {module!r} package, which is not installed "
            f"here: {fix}"
        )


def check_available(algorithm: str) -> None:
    """Raise :class:`MissingPackage` when the local sampler for ``algorithm`` cannot run."""
    if algorithm == "cmaes":
        _require("cmaes", algorithm, "pip install cmaes")
    elif algorithm == "sobol":
        _require("scipy", algorithm, "pip install scipy")
    elif algorithm == "bayesianoptimization":
        _require("torch", algorithm, _TORCH_EXTRA)
        _require("scipy", algorithm, "pip install scipy")


def distribution(p: Param) -> Any:
    """The Optuna distribution of one parameter."""
    from optuna import distributions as d

    if p.type == "uniform":
        assert p.low is not None and p.high is not None
        return d.FloatDistribution(float(p.low), float(p.high), step=p.step)
    if p.type == "loguniform":
        assert p.low is not None and p.high is not None
        return d.FloatDistribution(float(p.low), float(p.high), log=True)
    if p.type == "integer":
        assert p.low is not None and p.high is not None
        return d.IntDistribution(int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return d.CategoricalDistribution(list(p.values))


def _grid_sampler_class() -> Any:
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        """A grid sampler for ask-and-tell: the sweeper stops at the grid's size itself.

        Optuna's own calls ``study.stop()`` after the last point, which only works
        inside ``study.optimize``.
        """

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGridSampler


def _grid_sampler(space: Any, seed: int | None) -> Any:
    return _grid_sampler_class()(space, seed=seed)


def sampler(settings: SweepSettings) -> Any:
    """The Optuna sampler for the sweep's algorithm (after :func:`check_available`)."""
    import optuna

    check_available(settings.algorithm)
    seed = settings.seed
    name = settings.algorithm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if name == "multivariate-tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
        if name == "grid":
            space = {p.name: p.grid_values() for p in settings.params}
            return _grid_sampler(space, seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed)
        if name == "sobol":
            return optuna.samplers.QMCSampler(qmc_type="sobol", seed=seed)
        if name == "bayesianoptimization":
            return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"unknown algorithm {name!r}")


def pruner(settings: SweepSettings) -> Any:
    """The Optuna pruner for the sweep's early-stopping rule (a no-op pruner when none)."""
    import optuna

    es = settings.early_stopping
    if es is None:
        return optuna.pruners.NopPruner()
    if es.algorithm == "medianstop":
        # Katib: compare once `start_step` values are reported, against at least
        # `min_trials_required` finished trials.
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(es.settings.get("min_trials_required", 3)),
            n_warmup_steps=int(es.settings.get("start_step", 4)),
        )
    raise ValueError(f"unknown early stopping {es.algorithm!r}")


def katib_algorithm_settings(settings: SweepSettings) -> list[tuple[str, str]]:
    """``(name, value)`` settings of Katib's suggestion service for the algorithm."""
    out: list[tuple[str, str]] = []
    if settings.seed is not None and settings.algorithm not in ("grid", "sobol"):
        out.append(("random_state", str(settings.seed)))
    return out
