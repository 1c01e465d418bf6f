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
