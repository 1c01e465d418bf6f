"""Search spaces for ``@sweep``: the range or the values each searched parameter takes.

``space.uniform``, ``loguniform``, ``integer``, ``categorical`` and ``grid``
are validated where they are written, and lower to Katib's parameter types
(``double``, ``int``, ``categorical``, ``discrete``) on a cluster and to
Optuna distributions locally. See
https://www.kubeflow.org/docs/components/katib/user-guides/hp-tuning/configure-experiment/#search-space

    space={"lr": space.loguniform(1e-4, 1e-1), "depth": space.integer(2, 8),
           "optimizer": space.categorical(["adam", "sgd"])}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from workbench_dsl.errors import PipelineDefinitionError

__all__ = [
    "Categorical",
    "Domain",
    "Grid",
    "Integer",
    "LogUniform",
    "Uniform",
    "categorical",
    "grid",
    "integer",
    "loguniform",
    "to_spec",
    "uniform",
]

#: The scalar types a categorical or grid value may have (what Katib and Optuna can carry).
Scalar: TypeAlias = str | int | float | bool | None


def _number(value: Any, what: str, call: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PipelineDefinitionError(
            f"{call}: {what} must be a number (got {type(value).__name__} {value!r})"
        )
    if not math.isfinite(value):
        raise PipelineDefinitionError(f"{call}: {what} must be finite (got {value!r})")
    return float(value)


def _integer(value: Any, what: str, call: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PipelineDefinitionError(
            f"{call}: {what} must be a whole number (got {type(value).__name__} {value!r})"
        )
    return value


@dataclass(frozen=True)
class Uniform:
    """Floats drawn evenly from ``[low, high]`` (on a ``step`` lattice when given)."""

    low: float
    high: float
    step: float | None = None

    def to_spec(self) -> dict[str, Any]:
        return {"type": "uniform", "low": self.low, "high": self.high, "step": self.step}

    def grid_values(self) -> list[Scalar] | None:
        if self.step is None:
            return None
        from workbench_dsl.backends.sweeper.base import step_points

        return list(step_points(float(self.low), float(self.high), float(self.step)))


@dataclass(frozen=True)
class LogUniform:
    """Positive floats drawn evenly in log space from ``[low, high]``."""

    low: float
    high: float

    def to_spec(self) -> dict[str, Any]:
        return {"type": "loguniform", "low": self.low, "high": self.high}

    def grid_values(self) -> list[Scalar] | None:
        return None


@dataclass(frozen=True)
class Integer:
    """Whole numbers from ``low`` to ``high`` inclusive, every ``step``, optionally in log space."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "log": self.log,
        }

    def grid_values(self) -> list[Scalar] | None:
        return list(range(self.low, self.high + 1, self.step))


@dataclass(frozen=True)
class Categorical:
    """One of a fixed set of values, unordered (strings, numbers or booleans)."""

    values: tuple[Scalar, ...]

    def to_spec(self) -> dict[str, Any]:
        return {"type": "categorical", "values": list(self.values)}

    def grid_values(self) -> list[Scalar] | None:
        return list(self.values)


@dataclass(frozen=True)
class Grid:
    """An explicit list of values, each tried once under ``algorithm="grid"``."""

    values: tuple[Scalar, ...]

    def to_spec(self) -> dict[str, Any]:
        return {"type": "grid", "values": list(self.values)}

    def grid_values(self) -> list[Scalar] | None:
        return list(self.values)


Domain: TypeAlias = Uniform | LogUniform | Integer | Categorical | Grid


def uniform(low: float, high: float, *, step: float | None = None) -> Uniform:
    """A float drawn evenly from ``[low, high]``; with ``step``, only ``low + k*step``."""
    call = f"space.uniform({low!r}, {high!r})"
    lo, hi = _number(low, "low", call), _number(high, "high", call)
    if lo >= hi:
        raise PipelineDefinitionError(f"{call}: empty range, low must be less than high")
    st = None
    if step is not None:
        st = _number(step, "step", call)
        if st <= 0 or st > hi - lo:
            raise PipelineDefinitionError(
                f"{call}: step must be positive and at most high - low (got {step!r})"
            )
    return Uniform(lo, hi, st)


def loguniform(low: float, high: float) -> LogUniform:
    """A positive float drawn evenly in log space from ``[low, high]`` (learning rates)."""
    call = f"space.loguniform({low!r}, {high!r})"
    lo, hi = _number(low, "low", call), _number(high, "high", call)
    if lo <= 0:
        raise PipelineDefinitionError(
            f"{call}: low must be positive, the log of a non-positive bound is undefined"
        )
    if lo >= hi:
        raise PipelineDefinitionError(f"{call}: empty range, low must be less than high")
    return LogUniform(lo, hi)


def integer(low: int, high: int, *, step: int = 1, log: bool = False) -> Integer:
    """A whole number from ``low`` to ``high`` inclusive (every ``step``; log-spaced if ``log``)."""
    call = f"space.integer({low!r}, {high!r})"
    lo, hi = _integer(low, "low", call), _integer(high, "high", call)
    if lo >= hi:
        raise PipelineDefinitionError(f"{call}: empty range, low must be less than high")
    st = _integer(step, "step", call)
    if st < 1:
        raise PipelineDefinitionError(f"{call}: step must be 1 or more (got {step!r})")
    if not isinstance(log, bool):
        raise PipelineDefinitionError(f"{call}: log must be True or False")
    if log and lo < 1:
        raise PipelineDefinitionError(
            f"{call}: with log=True low must be 1 or more, the log of a non-positive bound "
            f"is undefined"
        )
    if log and st != 1:
        raise PipelineDefinitionError(f"{call}: log=True cannot be combined with step")
    return Integer(lo, hi, st, log)


def _values(values: Any, call: str) -> tuple[Scalar, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | set | frozenset):
        raise PipelineDefinitionError(
            f"{call}: values must be a list (got {type(values).__name__} {values!r})"
        )
    items = tuple(values)
    if not items:
        raise PipelineDefinitionError(f"{call}: values is empty; give at least one value")
    seen: dict[str, Any] = {}
    for v in items:
        if v is not None and not isinstance(v, str | int | float | bool):
            raise PipelineDefinitionError(
                f"{call}: values must be strings, numbers or booleans (got {type(v).__name__})"
            )
        if isinstance(v, float) and not math.isfinite(v):
            raise PipelineDefinitionError(f"{call}: values must be finite (got {v!r})")
        # On a cluster Katib carries every value as text: two values with the same
        # text could not be told apart when a trial reads its assignment.
        key = str(v)
        if key in seen:
            raise PipelineDefinitionError(
                f"{call}: duplicate value {v!r}"
                + ("" if seen[key] == v else f" (and {seen[key]!r})")
            )
        seen[key] = v
    return items


def categorical(values: Sequence[Scalar]) -> Categorical:
    """One of ``values`` (strings, numbers or booleans), with no order between them."""
    return Categorical(_values(values, f"space.categorical({values!r})"))


def grid(values: Sequence[Scalar]) -> Grid:
    """Exactly these ``values``: with ``algorithm="grid"`` each is tried once."""
    return Grid(_values(values, f"space.grid({values!r})"))


def to_spec(space: Mapping[str, Domain]) -> dict[str, dict[str, Any]]:
    """The JSON form the runtime and the backends read (``{"lr": {"type": ...}}``)."""
    return {name: domain.to_spec() for name, domain in space.items()}
