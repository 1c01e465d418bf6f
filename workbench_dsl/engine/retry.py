"""``set_retry``: a task's ``retryPolicy`` (maxRetryCount, backoffDuration, backoffFactor, backoffMaxDuration).

As on the KFP backend (Argo's ``retryStrategy.backoff``): retry ``n`` waits
``backoffDuration * backoffFactor ** (n - 1)``, and no retry starts once
``backoffMaxDuration`` has passed since the task's first attempt began.
Durations are protobuf ``Duration`` JSON strings (``"30s"``, ``"1.5s"``);
plain numbers and ``"2m"``/``"1h"`` are accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# The longest a protobuf ``Duration`` holds (10,000 years); more is no valid policy.
MAX_DURATION = 315_576_000_000.0


def duration_seconds(value: Any, default: float) -> float:
    """Seconds in a ``Duration`` (``"3600s"``), a number, or ``default`` when unset/unreadable."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return min(max(0.0, float(value)), MAX_DURATION)
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*", str(value))
    if not m:
        return default
    return min(float(m.group(1)) * _UNITS[m.group(2) or "s"], MAX_DURATION)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    backoff: float = 0.0
    factor: float = 2.0
    max_duration: float = 3600.0

    @classmethod
    def of(cls, task: dict[str, Any]) -> RetryPolicy:
        rp = task.get("retryPolicy") or {}
        if not rp:
            return cls()
        try:
            retries = max(0, int(rp.get("maxRetryCount") or 0))
        except (TypeError, ValueError):
            retries = 0
        try:
            factor = float(rp.get("backoffFactor") or 2.0)
        except (TypeError, ValueError):
            factor = 2.0
        return cls(
            max_retries=retries,
            backoff=duration_seconds(rp.get("backoffDuration"), 0.0),
            factor=factor,
            max_duration=duration_seconds(rp.get("backoffMaxDuration"), 3600.0),
        )

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry), at most
        :data:`MAX_DURATION` (a factor of ``1e300`` overflowed, and its timer never fired)."""
        try:
            return min(self.backoff * (self.factor ** max(0, retry - 1)), MAX_DURATION)
        except OverflowError:
            return MAX_DURATION

    def allows(self, retry: int, elapsed: float) -> bool:
        """Whether retry number ``retry`` may start, ``elapsed`` seconds after the first attempt."""
        if retry > self.max_retries:
            return False
        return elapsed + self.delay(retry) <= self.max_duration
