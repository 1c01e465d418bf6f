"""Request rate, latency and error rate of local endpoints, from their own Prometheus ``/metrics``.

Each endpoint server counts requests per revision and outcome
(``workbench_endpoint_requests_total``) and times each prediction
(``workbench_endpoint_predict_seconds``, a histogram). Rates need two readings,
so while ``workbench ui`` runs a thread reads every running endpoint every few
seconds and keeps five minutes of readings; a page compares the newest with the
one a minute older, as Prometheus' ``rate()`` would.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REQUESTS = "workbench_endpoint_requests_total"
LATENCY = "workbench_endpoint_predict_seconds"
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Counts:
    """One revision's counters at one moment."""

    outcomes: dict[str, float] = field(default_factory=dict)  # ok | bad_input | error
    latency_sum: float = 0.0
    latency_count: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count

    @property
    def total(self) -> float:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> float:
        return sum(v for k, v in self.outcomes.items() if k != "ok")


@dataclass
class Reading:
    at: float
    revisions: dict[str, Counts]


def parse(text: str, endpoint: str) -> dict[str, Counts]:
    """The per-revision counters of ``endpoint`` in a Prometheus text exposition."""
    out: dict[str, Counts] = {}
    for line in text.splitlines():
        if not line.startswith("workbench_endpoint_"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name, raw_labels, raw_value = m.groups()
        labels = {
            k: v.replace('\\"', '"').replace("\\\\", "\\")
            for k, v in _LABEL.findall(raw_labels or "")
        }
        if labels.get("endpoint") != endpoint or "revision" not in labels:
            continue
        try:
            value = float(raw_value)
        except ValueError:
            continue
        c = out.setdefault(labels["revision"], Counts())
        if name == REQUESTS:
            c.outcomes[labels.get("outcome", "ok")] = value
        elif name == LATENCY + "_sum":
            c.latency_sum = value
        elif name == LATENCY + "_count":
            c.latency_count = value
        elif name == LATENCY + "_bucket" and "le" in labels:
            c.buckets[math.inf if labels["le"] == "+Inf" else float(labels["le"])] = value
    return out


def scrape(port: int, endpoint: str, timeout: float = 2.0) -> dict[str, Counts] | None:
    """Read ``http://127.0.0.1:PORT/metrics``; None when the server does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            return parse(r.read().decode("utf-8", errors="replace"), endpoint)
    except (OSError, ValueError):
        return None


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile``: the q-quantile from cumulative bucket counts (linear inside a
    bucket, the last finite bound when it falls in +Inf)."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for b in bounds:
        count = buckets[b]
        if count >= rank:
            if math.isinf(b):
                return prev_bound
            inside = count - prev_count
            frac = (rank - prev_count) / inside if inside > 0 else 1.0
            return prev_bound + (b - prev_bound) * frac
        prev_bound, prev_count = b, count
    return prev_bound


def _delta(new: Counts, old: Counts | None) -> Counts:
    if old is None or new.total < old.total:  # a new revision, or the server restarted
        return new
    return Counts(
        {k: v - old.outcomes.get(k, 0.0) for k, v in new.outcomes.items()},
        new.latency_sum - old.latency_sum,
        new.latency_count - old.latency_count,
        {b: v - old.buckets.get(b, 0.0) for b, v in new.buckets.items()},
    )


def summarize(delta: Counts, seconds: float | None) -> dict[str, Any]:
    """Rate, error rate, mean and p95 latency of the requests in ``delta``."""
    total = delta.total
    return {
        "requests": int(total),
        "rate_per_s": (total / seconds) if seconds else None,
        "error_rate": (delta.failed / total) if total else None,
        "mean_ms": (delta.latency_sum / delta.latency_count * 1000)
        if delta.latency_count
        else None,
        "p95_ms": (q * 1000) if (q := quantile(0.95, delta.buckets)) is not None else None,
    }


class EndpointMetrics:
    """Readings of every running endpoint, taken every ``interval`` seconds."""

    def __init__(self, interval: float = 5.0, window: float = 60.0, keep: float = 300.0) -> None:
        self.interval, self.window, self.keep = interval, window, keep
        self._readings: dict[str, deque[Reading]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self, name: str, port: int) -> Reading | None:
        """Take one reading of endpoint ``name`` now (kept with the others)."""
        revisions = scrape(port, name)
        if revisions is None:
            return None
        reading = Reading(time.time(), revisions)
        with self._lock:
            q = self._readings.setdefault(name, deque())
            q.append(reading)
            while q and q[0].at < reading.at - self.keep:
                q.popleft()
        return reading

    def summary(self, name: str, port: int | None = None) -> dict[str, Any] | None:
        """Totals since the server started, the last minute's rates (per revision and all
        together) and the request rate per interval for a sparkline."""
        with self._lock:
            q = list(self._readings.get(name, ()))
        if port is not None:  # a page asks: read now (a few ms on loopback)
            fresh = self.read(name, port)
            if fresh is not None:
                q.append(fresh)
        if not q:
            return None
        last = q[-1]
        base = next((r for r in q if r.at >= last.at - self.window), None)
        if base is last:
            base = q[-2] if len(q) > 1 else None
        seconds = (last.at - base.at) if base is not None else None
        per_rev: dict[str, Any] = {}
        overall_new, overall_old = Counts(), Counts()
        for rev, counts in sorted(last.revisions.items()):
            old = base.revisions.get(rev) if base is not None else None
            per_rev[rev] = {
                "total": summarize(counts, None),
                "recent": summarize(_delta(counts, old), seconds) if base is not None else None,
            }
            _add(overall_new, counts)
            if old is not None:
                _add(overall_old, old)
        spark = []
        for a, b in itertools.pairwise(q):
            span = b.at - a.at
            moved = sum(c.total for c in b.revisions.values()) - sum(
                c.total for c in a.revisions.values()
            )
            spark.append(max(0.0, moved) / span if span > 0 else 0.0)
        return {
            "at": last.at,
            "window_s": seconds,
            "total": summarize(overall_new, None),
            "recent": summarize(_delta(overall_new, overall_old), seconds)
            if base is not None
            else None,
            "revisions": per_rev,
            "spark": spark,
        }

    # -- the background reader ------------------------------------------------------------

    def start(self, running: Callable[[], list[tuple[str, int]]]) -> None:
        """Read the endpoints ``running()`` names (name, port) until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    for name, port in running():
                        self.read(name, port)
                except Exception:  # a locked database, a server going away: try again later
                    continue

        self._thread = threading.Thread(target=loop, name="workbench-ui-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _add(into: Counts, c: Counts) -> None:
    for k, v in c.outcomes.items():
        into.outcomes[k] = into.outcomes.get(k, 0.0) + v
    into.latency_sum += c.latency_sum
    into.latency_count += c.latency_count
    for b, v in c.buckets.items():
        into.buckets[b] = into.buckets.get(b, 0.0) + v
