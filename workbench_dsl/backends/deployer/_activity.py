"""How busy a local endpoint is: requests in flight, idle seconds, the idle share of a window.

An endpoint is idle while no request is in flight. The model server of an
always-on endpoint and the activator of a scale-to-zero one (:mod:`._activator`)
each keep an :class:`IdleMeter`; it decides when a scale-to-zero endpoint's model
server stops, and is exposed on ``/metrics`` (:class:`IdleCollector`) and in
``/_workbench/status``. Health, readiness, ``/metrics`` and the status route are
not requests: a scrape or ``workbench endpoints list`` never keeps a model awake.
This module imports no kserve: the activator must stay small while its model sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Seconds over which the idle share is computed (Prometheus' rate() covers other windows).
IDLE_WINDOW_S = 300

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def passive(path: str, name: str) -> bool:
    """Whether a request for ``path`` only looks at the endpoint (it is no activity)."""
    return path in (
        "",
        "/",
        "/metrics",
        f"/v2/models/{name}/ready",
        f"/v1/models/{name}",
    ) or path.startswith(("/v2/health", "/_workbench/status"))


class IdleMeter:
    """Requests in flight and the time with none, exactly, in bounded memory.

    Busy time is kept per whole second in a ring of slots, so the idle share of the
    last ``window_s`` seconds (exact to the second at its oldest end) costs the same
    at any request rate.

    Args:
        window_s: The window of :meth:`idle_ratio`, in seconds.
        clock: Monotonic seconds (a parameter so the arithmetic can be checked).
    """

    def __init__(
        self, window_s: int = IDLE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = int(window_s)
        self.clock = clock
        self.started = clock()
        self.in_flight = 0
        self.last_done = self.started
        self._busy_since: float | None = None
        self._busy_total = 0.0
        self._ring = self.window + 2  # the seconds a window touches, and the current one
        self._slots = [0.0] * self._ring
        self._slot_second = [-1] * self._ring
        # The model server's /metrics is a sync route (FastAPI runs it in a thread).
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.in_flight == 0:
                self._busy_since = self.clock()
            self.in_flight += 1

    def exit(self) -> None:
        with self._lock:
            self.in_flight -= 1
            if self.in_flight == 0 and self._busy_since is not None:
                now = self.clock()
                self._add(self._busy_since, now)
                self._busy_since = None
                self.last_done = now

    def idle_for(self) -> float:
        """Seconds since the last request ended (0 while one is in flight)."""
        with self._lock:
            return 0.0 if self.in_flight else self.clock() - self.last_done

    def idle_seconds(self) -> float:
        """Seconds with no request in flight since the meter started."""
        with self._lock:
            now = self.clock()
            busy = self._busy_total + (now - self._busy_since if self._busy_since else 0.0)
            return max(0.0, now - self.started - busy)

    def idle_ratio(self) -> float:
        """The share (0..1) of the last ``window`` seconds (or of the meter's life, when
        shorter) with no request in flight."""
        with self._lock:
            now = self.clock()
            span = min(float(self.window), now - self.started)
            if span <= 0:
                return 1.0
            first = int(now - self.window)
            busy = sum(v for v, s in zip(self._slots, self._slot_second, strict=True) if s >= first)
            if self._busy_since is not None:
                busy += min(now - self._busy_since, span)
            return max(0.0, 1.0 - min(busy, span) / span)

    def _add(self, start: float, end: float) -> None:
        self._busy_total += end - start
        start = max(start, end - self.window - 1)  # older seconds left the window
        while start < end:
            second = int(start)
            upto = min(end, second + 1.0)
            slot = second % self._ring
            if self._slot_second[slot] != second:
                self._slot_second[slot] = second
                self._slots[slot] = 0.0
            self._slots[slot] += upto - start
            start = upto


class Activity:
    """ASGI middleware: every request that is not :func:`passive` is in flight on ``meter``."""

    def __init__(self, app: ASGIApp, *, meter: IdleMeter, name: str) -> None:
        self.app = app
        self.meter = meter
        self.name = name

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or passive(scope.get("path", ""), self.name):
            await self.app(scope, receive, send)
            return
        self.meter.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.meter.exit()


class IdleCollector(Collector):
    """``workbench_endpoint_idle_seconds_total`` and ``workbench_endpoint_idle_ratio``."""

    def __init__(self, name: str, meter: IdleMeter) -> None:
        self.name = name
        self.meter = meter

    def collect(self) -> Iterator[Metric]:
        seconds = CounterMetricFamily(
            "workbench_endpoint_idle_seconds",
            "Seconds with no request in flight since the endpoint's server started.",
            labels=["endpoint"],
        )
        seconds.add_metric([self.name], self.meter.idle_seconds())
        ratio = GaugeMetricFamily(
            "workbench_endpoint_idle_ratio",
            f"Share of the last {self.meter.window}s with no request in flight (0..1).",
            labels=["endpoint"],
        )
        ratio.add_metric([self.name], self.meter.idle_ratio())
        yield seconds
        yield ratio
