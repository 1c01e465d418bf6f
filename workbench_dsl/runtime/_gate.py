"""Evaluation gates: ``{"accuracy": ">= 0.9", "latency_ms": "< 50"}`` parsed and checked."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class GateSyntaxError(ValueError):
    """A gate condition that is not ``OP NUMBER``."""


class MissingMetric(KeyError):
    """A metric named in the gate that the evaluation did not return."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Check:
    condition: Condition
    value: float
    passed: bool

    def __str__(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        return f"{self.condition.metric} = {self.value:g} ({self.condition.op} {self.condition.threshold:g}: {mark})"


def parse_gate(gate: Mapping[str, str]) -> list[Condition]:
    """Conditions from ``{"metric": "OP NUMBER"}``; a bad one raises :class:`GateSyntaxError`."""
    out = []
    for metric, text in gate.items():
        if not isinstance(metric, str) or not metric:
            raise GateSyntaxError(f"gate keys are metric names (got {metric!r})")
        if not isinstance(text, str):
            raise GateSyntaxError(
                f"gate[{metric!r}] must be a string such as '>= 0.9' (got {text!r})"
            )
        m = _CONDITION.match(text)
        if not m:
            raise GateSyntaxError(
                f"gate[{metric!r}] = {text!r} is not a condition; write OP NUMBER with OP one "
                f"of >=, >, <=, <, ==, != (for example '>= 0.9')"
            )
        out.append(Condition(metric, m.group(1), float(m.group(2))))
    return out


def check_gate(conditions: list[Condition], metrics: Mapping[str, float]) -> list[Check]:
    """Every condition against the metrics; a metric the gate names but the result lacks is an error."""
    missing = [c.metric for c in conditions if c.metric not in metrics]
    if missing:
        have = ", ".join(sorted(metrics)) or "none"
        names = ", ".join(repr(m) for m in missing)
        raise MissingMetric(
            f"the gate names {names} but the evaluation returned no such metric "
            f"(it returned: {have})"
        )
    return [
        Check(c, float(metrics[c.metric]), c.holds(float(metrics[c.metric]))) for c in conditions
    ]


# -- champion vs challenger -----------------------------------------------------------

_MARGIN_OPS = (">=", ">", "<=", "<")


@dataclass(frozen=True)
class Margin:
    """``challenger - champion OP margin`` for one metric: ``>``/``>=`` say higher is better."""

    metric: str
    op: str
    margin: float

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">", ">=")

    def holds(self, challenger: float, champion: float) -> bool:
        delta = challenger - champion
        return not math.isnan(delta) and _OPS[self.op](delta, self.margin)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} champion {self.margin:+g}"


@dataclass(frozen=True)
class MarginCheck:
    margin: Margin
    challenger: float
    champion: float
    passed: bool

    @property
    def delta(self) -> float:
        return self.challenger - self.champion

    def __str__(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        m = self.margin
        return (
            f"{m.metric}: challenger {self.challenger:g} vs champion {self.champion:g} "
            f"({self.delta:+g}, needs {m.op} {m.margin:+g}: {mark})"
        )


def normalise_margins(beats: Mapping[str, float | int | str]) -> dict[str, str]:
    """``{"accuracy": 0.01}`` as ``{"accuracy": ">= 0.01"}``; strings are checked as they are.

    A number is the least a higher-is-better metric must gain; ``"OP NUMBER"`` compares
    ``challenger - champion`` with OP one of ``>=``, ``>`` (higher is better), ``<=``, ``<``
    (lower is better). Raises :class:`GateSyntaxError` on anything else.
    """
    out: dict[str, str] = {}
    for metric, value in beats.items():
        if not isinstance(metric, str) or not metric:
            raise GateSyntaxError(f"beats_champion keys are metric names (got {metric!r})")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise GateSyntaxError(
                f"beats_champion[{metric!r}] must be a margin such as 0.01 or '<= -5' "
                f"(got {value!r})"
            )
        if not isinstance(value, str):
            if not math.isfinite(value):
                raise GateSyntaxError(f"beats_champion[{metric!r}] must be finite (got {value!r})")
            out[metric] = f">= {float(value)!r}"
            continue
        m = _CONDITION.match(value)
        if not m or m.group(1) not in _MARGIN_OPS:
            raise GateSyntaxError(
                f"beats_champion[{metric!r}] = {value!r} is not a margin; give a number (the "
                f"least gain of a higher-is-better metric, e.g. 0.01) or 'OP NUMBER' on "
                f"challenger - champion with OP one of >=, > (higher is better), <=, < (lower "
                f"is better), e.g. '<= -5'"
            )
        out[metric] = value.strip()
    return out


def parse_margins(beats: Mapping[str, str]) -> list[Margin]:
    """Margins from what :func:`normalise_margins` wrote."""
    out = []
    for metric, text in normalise_margins(beats).items():
        m = _CONDITION.match(text)
        assert m is not None  # checked by normalise_margins
        out.append(Margin(metric, m.group(1), float(m.group(2))))
    return out


def check_margins(
    margins: list[Margin], challenger: Mapping[str, float], champion: Mapping[str, float]
) -> list[MarginCheck]:
    """Every margin on both models' metrics; a metric either evaluation lacks is an error."""
    for who, metrics in (("challenger", challenger), ("champion", champion)):
        missing = [m.metric for m in margins if m.metric not in metrics]
        if missing:
            have = ", ".join(sorted(metrics)) or "none"
            names = ", ".join(repr(m) for m in missing)
            raise MissingMetric(
                f"beats_champion names {names} but the {who}'s evaluation returned no such "
                f"metric (it returned: {have})"
            )
    return [
        MarginCheck(
            m,
            float(challenger[m.metric]),
            float(champion[m.metric]),
            m.holds(float(challenger[m.metric]), float(champion[m.metric])),
        )
        for m in margins
    ]
