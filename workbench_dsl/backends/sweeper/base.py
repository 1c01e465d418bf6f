"""The sweeper interface: a search space, an objective and trial counts in; the best trial out.

Both implementations (``local``: an Optuna study in separate processes;
``kubernetes``: a Katib Experiment) read the same frozen :class:`SweepSettings`,
which ``@sweep`` writes and every reader reads back strictly
(:meth:`SweepSettings.from_json`), and return the same :class:`SweepResult`, so
the launcher writes the same outputs either way. The type lives here, below
``runtime/`` and ``dsl/``, because the backends may import neither.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from workbench_dsl._settings import (
    SettingsError,
    count,
    fail,
    known,
    number,
    one_of,
    opt_count,
    problem,
    str_list,
    text,
)

#: Katib's algorithm names, the ones a sweep accepts (kubeflow/katib katib-config.yaml).
ALGORITHMS = (
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "sobol",
    "bayesianoptimization",
)
#: Early-stopping rules that run the same way locally and on Katib.
EARLY_STOPPING = ("medianstop",)
#: Settings of each early-stopping rule and their Katib defaults.
EARLY_STOPPING_SETTINGS: dict[str, dict[str, int]] = {
    "medianstop": {"min_trials_required": 3, "start_step": 4},
}
GOALS = ("maximize", "minimize")
#: A metric name Katib's StdOut collector can read: its default filter is
#: ``([\w|-]+)\s*=\s*(...)`` (kubeflow/katib pkg/metricscollector/v1beta1/common/const.go).
METRIC_NAME = re.compile(r"^[A-Za-z0-9_|-]+$")
PARAM_TYPES = ("uniform", "loguniform", "integer", "categorical", "grid")
#: What a trial's state is called in the ``trials`` dataset, whichever backend ran it.
STATES = ("succeeded", "pruned", "failed", "running")


class SweepFailed(Exception):
    """The sweep could not produce a best trial (too many failures, none succeeded, ...)."""


class TrialPruned(Exception):
    """Raised inside a trial when early stopping decides it should stop."""


def step_points(low: float, high: float, step: float) -> list[float]:
    """The points of ``uniform(low, high, step=...)``: the ones Katib's grid enumerates.

    Katib's grid service takes ``np.arange(low, high + step, step)`` and drops
    the last point when it passes ``high`` (kubeflow/katib
    pkg/suggestion/v1beta1/internal/search_space.py); numpy sizes the range as
    ``ceil((stop - start) / step)`` and fills it with ``start + i * delta``. The
    same float arithmetic here keeps the count (and so ``maxTrialCount``) equal;
    the values are rounded for display.
    """
    n = max(0, math.ceil((high + step - low) / step))
    delta = (low + step) - low
    if n and low + (n - 1) * delta > high:
        n -= 1
    return [round(low + i * delta, 12) for i in range(n)]


#: The keys of each parameter type's JSON (what ``dsl.space``'s domains write).
_SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "uniform": ("type", "low", "high", "step"),
    "loguniform": ("type", "low", "high"),
    "integer": ("type", "low", "high", "step", "log"),
    "categorical": ("type", "values"),
    "grid": ("type", "values"),
}


def _bound(what: str, key: str, value: Any, kind: str) -> int | float:
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(what, key, "a whole number", value)
        return value
    return number(what, key, value)


@dataclass(frozen=True)
class Param:
    """One searched parameter, as the step's JSON carries it."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    @classmethod
    def from_spec(cls, name: str, spec: Any) -> Param:
        """Read one entry of ``space`` as :meth:`to_spec` writes it; refuse anything else."""
        what = f"sweep settings: space[{name!r}]"
        if not isinstance(spec, dict):
            raise fail(what, "the parameter", "an object such as {'type': 'uniform', ...}", spec)
        kind = one_of(what, "type", spec.get("type"), PARAM_TYPES)
        known(what, spec, _SPEC_KEYS[kind])
        if kind in ("categorical", "grid"):
            values = spec.get("values")
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str | int | float) for v in values)
            ):
                raise fail(
                    what, "values", "a non-empty list of strings, numbers or booleans", values
                )
            return cls(name=name, type=kind, values=tuple(values))
        low, high = (_bound(what, k, spec.get(k), kind) for k in ("low", "high"))
        step = spec.get("step")
        if step is not None:
            step = _bound(what, "step", step, kind)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise fail(what, "log", "true or false", log)
        return cls(
            name=name, type=kind, low=low, high=high, step=step, log=log or kind == "loguniform"
        )

    def to_spec(self) -> dict[str, Any]:
        """The JSON ``space`` entry (the keys ``dsl.space``'s domains write)."""
        if self.discrete:
            return {"type": self.type, "values": list(self.values)}
        spec: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.type != "loguniform":
            spec["step"] = self.step
        if self.type == "integer":
            spec["log"] = self.log
        return spec

    def validate(self) -> None:
        """Raise ``ValueError`` when the range or values cannot be searched."""
        what = f"parameter {self.name!r}"
        if self.discrete:
            if not self.values:
                raise ValueError(f"{what}: values is empty")
            return
        if not isinstance(self.low, int | float) or not isinstance(self.high, int | float):
            raise ValueError(f"{what}: low and high must be numbers")
        if self.low >= self.high:
            raise ValueError(f"{what}: empty range, low must be less than high")
        if self.log and self.low <= 0:
            raise ValueError(
                f"{what}: low must be positive, the log of a non-positive bound is undefined"
            )
        if self.step is not None and self.step <= 0:
            raise ValueError(f"{what}: step must be positive")

    @property
    def discrete(self) -> bool:
        return self.type in ("categorical", "grid")

    def grid_values(self) -> list[Any] | None:
        """Every value the parameter takes, or None when it is continuous."""
        if self.discrete:
            return list(self.values)
        if self.type == "integer":
            assert self.low is not None and self.high is not None
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.type == "uniform" and self.step:
            assert self.low is not None and self.high is not None
            return step_points(float(self.low), float(self.high), float(self.step))
        return None

    def coerce(self, text: str) -> Any:
        """The typed value of an assignment Katib hands a trial as text."""
        if self.discrete:
            for v in self.values:
                if str(v) == text:
                    return v
            raise ValueError(f"parameter {self.name!r}: {text!r} is not one of {self.values}")
        if self.type == "integer":
            return int(float(text))
        return float(text)


@dataclass(frozen=True)
class EarlyStopping:
    """An early-stopping rule by Katib's name and its settings."""

    algorithm: str
    settings: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, data: Any) -> EarlyStopping:
        what = "sweep settings: early_stopping"
        known(what, data, ("algorithm", "settings"))
        name = one_of(what, "algorithm", data.get("algorithm"), EARLY_STOPPING)
        given = data.get("settings") or {}
        known(f"{what} settings", given, EARLY_STOPPING_SETTINGS[name])
        return cls(name, {k: count(what, k, v) for k, v in given.items()})


@dataclass(frozen=True)
class SweepSettings:
    """The search of a ``@sweep`` step: written by the decorator, read by the launcher and both sweepers.

    ``@sweep`` builds it when it decorates; the compiled component carries its
    :meth:`to_json` (the keys earlier components carried, so compiled YAML does
    not change); the launcher, ``workbench plan`` and each Optuna trial process
    read it back with :meth:`from_json`, which refuses an unknown key or a value
    of the wrong type in one line. The launcher's other settings (the step,
    what each trial runs) wrap it in ``runtime.settings.SweepStepSettings``.
    """

    objective: str
    goal: str
    algorithm: str
    params: tuple[Param, ...]
    max_trials: int
    parallel_trials: int
    max_failed_trials: int | None = None
    early_stopping: EarlyStopping | None = None
    seed: int | None = None
    #: Other metrics to record besides the objective (None: whatever a trial returns).
    metrics: tuple[str, ...] | None = None

    #: The JSON keys :meth:`to_json` writes.
    KEYS: ClassVar[tuple[str, ...]] = (
        "objective",
        "goal",
        "algorithm",
        "space",
        "max_trials",
        "parallel_trials",
        "max_failed_trials",
        "early_stopping",
        "seed",
        "metrics",
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON a launcher component carries (``space`` keyed by parameter name)."""
        return {
            "objective": self.objective,
            "goal": self.goal,
            "algorithm": self.algorithm,
            "space": {p.name: p.to_spec() for p in self.params},
            "max_trials": self.max_trials,
            "parallel_trials": self.parallel_trials,
            "max_failed_trials": self.max_failed_trials,
            "early_stopping": self.early_stopping.to_json() if self.early_stopping else None,
            "seed": self.seed,
            "metrics": None if self.metrics is None else list(self.metrics),
        }

    @classmethod
    def from_json(cls, data: Any) -> SweepSettings:
        """Read what :meth:`to_json` wrote; an unknown key or a mistyped value is an error."""
        what = "sweep settings"
        known(what, data, cls.KEYS)
        for key in ("objective", "goal", "algorithm", "space", "max_trials", "parallel_trials"):
            if key not in data:
                raise fail(what, key, "set", None)
        space = data["space"]
        if not isinstance(space, dict) or not space:
            raise fail(what, "space", "a non-empty object of parameters", space)
        es = data.get("early_stopping")
        metrics = data.get("metrics")
        return cls(
            objective=text(what, "objective", data["objective"]),
            goal=one_of(what, "goal", data["goal"], GOALS),
            algorithm=one_of(what, "algorithm", data["algorithm"], ALGORITHMS),
            params=tuple(Param.from_spec(str(n), s) for n, s in space.items()),
            max_trials=count(what, "max_trials", data["max_trials"]),
            parallel_trials=count(what, "parallel_trials", data["parallel_trials"]),
            max_failed_trials=opt_count(what, "max_failed_trials", data.get("max_failed_trials")),
            early_stopping=None if es is None else EarlyStopping.from_json(es),
            seed=opt_count(what, "seed", data.get("seed")),
            metrics=None if metrics is None else str_list(what, "metrics", metrics),
        )

    @classmethod
    def from_parameters(
        cls,
        *,
        space: Any,
        objective: str,
        goal: str = "maximize",
        algorithm: str = "tpe",
        max_trials: int = 20,
        parallel_trials: int = 2,
        max_failed_trials: int = -1,
        early_stopping: str = "",
        seed: int = -1,
    ) -> SweepSettings:
        """The search of the prebuilt ``sweep`` component, from its plain parameters (-1, "": unset).

        They are the user's arguments, not a component's baked-in settings, so a
        refusal says what is wrong without the advice to rebuild the component;
        :meth:`validate` then checks the ranges.
        """
        data = {
            "space": space,
            "objective": objective,
            "goal": goal,
            "algorithm": algorithm,
            "max_trials": max_trials,
            "parallel_trials": parallel_trials,
            "max_failed_trials": None if max_failed_trials < 0 else max_failed_trials,
            "early_stopping": {"algorithm": early_stopping} if early_stopping else None,
            "seed": None if seed < 0 else seed,
        }
        try:
            return cls.from_json(data)
        except SettingsError as e:
            raise ValueError(problem(e)) from None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting (for settings not made by ``@sweep``)."""
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {self.algorithm!r} (known: {', '.join(ALGORITHMS)})"
            )
        if self.goal not in GOALS:
            raise ValueError(f"goal must be 'maximize' or 'minimize' (got {self.goal!r})")
        if not self.objective:
            raise ValueError("objective must name a metric the trial returns")
        if not self.params:
            raise ValueError("the search space is empty")
        if self.max_trials < 1 or self.parallel_trials < 1:
            raise ValueError("max_trials and parallel_trials must be 1 or more")
        if self.max_failed_trials is not None and self.max_failed_trials < 0:
            raise ValueError("max_failed_trials must be 0 or more")
        if self.early_stopping and self.early_stopping.algorithm not in EARLY_STOPPING:
            raise ValueError(
                f"unknown early_stopping {self.early_stopping.algorithm!r} "
                f"(known: {', '.join(EARLY_STOPPING)})"
            )
        for p in self.params:
            p.validate()
            if self.algorithm == "grid" and p.grid_values() is None:
                raise ValueError(
                    f"algorithm='grid' needs a finite set of values, but {p.name!r} is continuous"
                )

    def grid_size(self) -> int | None:
        """How many points the grid has (None when a parameter is continuous)."""
        size = 1
        for p in self.params:
            values = p.grid_values()
            if values is None:
                return None
            size *= len(values)
        return size

    def total_trials(self) -> int:
        """``max_trials``, or fewer when a grid has fewer points."""
        if self.algorithm == "grid":
            size = self.grid_size()
            if size is not None:
                return min(self.max_trials, size)
        return self.max_trials

    def running_at_once(self) -> int:
        """``parallel_trials``, or fewer when fewer trials will run in all.

        Katib refuses ``parallelTrialCount > maxTrialCount``; Optuna would just idle.
        """
        return min(self.parallel_trials, self.total_trials())

    def failures_allowed(self) -> int | None:
        """``max_failed_trials``, at most the trials that run (Katib refuses more)."""
        if self.max_failed_trials is None:
            return None
        return min(self.max_failed_trials, self.total_trials())

    def recorded(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The metrics a trial record keeps: the objective and the declared ones.

        Katib's collector records only the metrics an Experiment names, so a local
        sweep keeps the same ones and the two records agree.
        """
        if self.metrics is None:
            return dict(metrics)
        keep = {self.objective, *self.metrics}
        return {k: v for k, v in metrics.items() if k in keep}

    def better(self, a: float, b: float) -> bool:
        return a > b if self.goal == "maximize" else a < b


@dataclass
class TrialRecord:
    """One trial as the ``trials`` dataset shows it."""

    number: int
    name: str
    state: str
    params: dict[str, Any]
    value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    error: str | None = None
    #: Where the trial's model output was written (local path or object-store URI).
    model_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepResult:
    """The best trial and every trial, in the order they started."""

    best: TrialRecord
    trials: list[TrialRecord]


#: Runs one trial: the assigned parameters and the trial's record in, its metrics out.
RunTrial = Callable[[dict[str, Any], TrialRecord], dict[str, Any]]


#: What each trial runs: a :data:`RunTrial` locally, a Katib trial template on a cluster.
TrialT_contra = TypeVar("TrialT_contra", contravariant=True)


@runtime_checkable
class Sweeper(Protocol[TrialT_contra]):
    """The one shape of a sweeper: ``local.OptunaSweeper`` (``Sweeper[RunTrial]``) and
    ``kubernetes.KatibSweeper`` (``Sweeper[TrialTemplate]``).

    They differ only in what a trial is: a callable run in this process, or a
    trial template the cluster runs.
    """

    def run(
        self,
        settings: SweepSettings,
        trial: TrialT_contra,
        /,
        *,
        name: str | None = None,
        step: str | None = None,
        owner: dict[str, str] | None = None,
    ) -> SweepResult:
        """Run trials until the settings say stop; return the best and every trial.

        ``name`` is the sweep's object on a cluster (default ``step``), ``step``
        the step it belongs to (labels), ``owner`` what owns the object (the
        launcher pod); a local study lives in its journal and ignores them.
        """
        ...


def objective_value(metrics: Any, objective: str) -> float:
    """The objective from a trial's result, or a one-line error saying what was wrong."""
    if not isinstance(metrics, dict):
        raise ValueError(
            f"the trial function must return a dict of metrics (got {type(metrics).__name__})"
        )
    if objective not in metrics:
        got = ", ".join(sorted(map(str, metrics))) or "nothing"
        raise ValueError(f"the trial returned no {objective!r} metric (got: {got})")
    value = metrics[objective]
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy and torch scalars
        except (TypeError, ValueError):
            raise ValueError(
                f"metric {objective!r} must be a number (got {type(metrics[objective]).__name__})"
            ) from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {objective!r} is {value}, not a finite number")
    return value
