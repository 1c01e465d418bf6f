"""Prometheus exposition of the local root: runs, tasks, cost and endpoints, read at scrape time.

https://prometheus.io/docs/instrumenting/writing_exporters/ -- an exporter for state
kept elsewhere builds its metric families on each scrape (a custom collector), rather
than keeping counters of its own. Ours reads the run store (through its own queries),
the endpoint table and each running endpoint's own ``/metrics`` (which the endpoint
server counts with prometheus_client) and re-exposes them with the same names, so one
scrape target sees every endpoint. Names follow the conventions: base units
(``_seconds``, ``_dollars``), ``_total`` on counters, ratios 0..1 as ``_ratio``.
"""

from __future__ import annotations

import sqlite3
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from workbench_dsl.paths import LocalRoot

if TYPE_CHECKING:
    from workbench_dsl.engine.store import RunStore

#: Task duration histogram bounds, in seconds (a lightweight step to a long training job).
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
#: Statuses a finished run or task is counted under (the run store's names).
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED", "CACHED", "SKIPPED")
#: The endpoint server's own series, re-exposed (see backends/deployer/_router.py).
ENDPOINT_SERIES = ("workbench_endpoint_requests", "workbench_endpoint_predict_seconds")

#: Every metric this collector can expose: name -> type (a dashboard may use only these).
METRICS: dict[str, str] = {
    "workbench_runs_total": "counter",
    "workbench_runs_in_progress": "gauge",
    "workbench_run_cost_dollars": "summary",
    "workbench_task_duration_seconds": "histogram",
    "workbench_tasks_total": "counter",
    "workbench_task_retries_total": "counter",
    "workbench_task_cache_hits_total": "counter",
    "workbench_tasks_running_cost_dollars_per_hour": "gauge",
    "workbench_endpoint_up": "gauge",
    "workbench_endpoint_canary_ratio": "gauge",
    "workbench_endpoint_requests_total": "counter",
    "workbench_endpoint_predict_seconds": "histogram",
    "workbench_endpoint_feature_drift_psi": "gauge",
    "workbench_endpoint_feature_drift_p_value": "gauge",
    "workbench_endpoint_feature_drifted": "gauge",
    "workbench_endpoint_drifted_features": "gauge",
    "workbench_endpoint_drift_instances": "gauge",
}


class WorkbenchCollector(Collector):
    """Builds every workbench metric family from the local root on each ``collect()``.

    Args:
        root: The local root whose run store and endpoints are read.
        scrape_timeout: Seconds to wait for one endpoint's ``/metrics``.
    """

    def __init__(self, root: LocalRoot, scrape_timeout: float = 2.0) -> None:
        self.root = root
        self.scrape_timeout = scrape_timeout

    def collect(self) -> Iterator[Metric]:
        # Every family is declared on every scrape, empty or not, so dashboards and
        # alerts see the same names on a fresh root as on a busy one.
        yield from self._runs()
        yield from self._tasks()
        yield from self._endpoints()
        yield from self._drift()

    def _read(self, query: Callable[[RunStore], list[sqlite3.Row]]) -> list[sqlite3.Row]:
        """Rows from the run store's own query (none before the first run)."""
        from workbench_dsl.engine.store import open_reader

        if not self.root.runs_db.exists():
            return []
        store = open_reader(self.root.runs_db)
        try:
            return query(store)
        finally:
            store.close()

    # -- runs and tasks -------------------------------------------------------------------

    def _runs(self) -> Iterator[Metric]:
        runs = self._read(lambda s: s.query_runs(limit=None))
        finished: dict[tuple[str, str], int] = defaultdict(int)
        running: dict[str, int] = defaultdict(int)
        cost: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # runs, dollars
        for r in runs:
            if r["status"] == "RUNNING":
                running[r["pipeline"]] += 1
                continue
            finished[(r["pipeline"], r["status"])] += 1
            c = cost[r["pipeline"]]
            c[0] += 1.0
            c[1] += float(r["cost"] or 0.0)
        total = CounterMetricFamily(
            "workbench_runs", "Finished runs by pipeline and status.", labels=["pipeline", "status"]
        )
        for (pipeline, status), n in sorted(finished.items()):
            total.add_metric([pipeline, status], n)
        yield total
        live = GaugeMetricFamily(
            "workbench_runs_in_progress", "Runs running now, by pipeline.", labels=["pipeline"]
        )
        for pipeline, n in sorted(running.items()):
            live.add_metric([pipeline], n)
        yield live
        per_run = SummaryMetricFamily(
            "workbench_run_cost_dollars",
            "Cost of finished runs (compute profiles' cost per hour x time), by pipeline.",
            labels=["pipeline"],
        )
        for pipeline, (count, dollars) in sorted(cost.items()):
            per_run.add_metric([pipeline], count_value=int(count), sum_value=dollars)
        yield per_run

    def _tasks(self) -> Iterator[Metric]:
        rows = self._read(lambda s: s.task_metrics())
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        counts: dict[tuple[str, str, str], int] = defaultdict(int)
        retries: dict[tuple[str, str], int] = defaultdict(int)
        hits: dict[tuple[str, str], int] = defaultdict(int)
        burn: dict[str, float] = defaultdict(float)
        for r in rows:
            key = (r["pipeline"], r["component"] or "")
            if r["status"] == "RUNNING":
                burn[r["pipeline"]] += float(r["cost_per_hour"] or 0.0)
            if r["status"] not in FINISHED:
                continue
            counts[(*key, r["status"])] += 1
            if r["cached"]:
                hits[key] += 1
            elif r["duration_s"] is not None:
                durations[key].append(float(r["duration_s"]))
            retries[key] += max(0, int(r["attempts"] or 0) - 1)
        hist = HistogramMetricFamily(
            "workbench_task_duration_seconds",
            "Duration of finished task executions (cache hits excluded), by pipeline and component.",
            labels=["pipeline", "component"],
        )
        for key, values in sorted(durations.items()):
            buckets = [(_le(b), sum(v <= b for v in values)) for b in DURATION_BUCKETS]
            buckets.append(("+Inf", len(values)))
            hist.add_metric(list(key), buckets, sum(values))
        yield hist
        yield _counter(
            "workbench_tasks",
            "Finished tasks by pipeline, component and status.",
            ["pipeline", "component", "status"],
            counts,
        )
        yield _counter(
            "workbench_task_retries",
            "Retries (attempts after the first) of finished tasks.",
            ["pipeline", "component"],
            retries,
        )
        yield _counter(
            "workbench_task_cache_hits",
            "Tasks answered from the cache.",
            ["pipeline", "component"],
            hits,
        )
        g = GaugeMetricFamily(
            "workbench_tasks_running_cost_dollars_per_hour",
            "What the tasks running now cost per hour (their profiles' cost_per_hour), by pipeline.",
            labels=["pipeline"],
        )
        for pipeline, dollars in sorted(burn.items()):
            g.add_metric([pipeline], dollars)
        yield g

    # -- endpoints ------------------------------------------------------------------------

    def _endpoints(self) -> Iterator[Metric]:
        from workbench_dsl.backends.deployer import local_deployer

        rows = local_deployer(self.root).store.all() if self.root.runs_db.exists() else []
        up = GaugeMetricFamily(
            "workbench_endpoint_up",
            "1 when the endpoint's server answered this scrape, 0 when it is down or stopped.",
            labels=["endpoint"],
        )
        canary = GaugeMetricFamily(
            "workbench_endpoint_canary_ratio",
            "Share of requests routed to the canary revision (0 when there is none).",
            labels=["endpoint"],
        )
        requests = CounterMetricFamily(
            "workbench_endpoint_requests",
            "Prediction requests by endpoint, revision and outcome (ok, bad_input, error).",
            labels=["endpoint", "revision", "outcome"],
        )
        latency = HistogramMetricFamily(
            "workbench_endpoint_predict_seconds",
            "Time in the revision's predict, by endpoint and revision.",
            labels=["endpoint", "revision"],
        )
        for row in sorted(rows, key=lambda r: r.name):
            families = self._scrape(row.port) if row.state == "running" else None
            up.add_metric([row.name], 1 if families is not None else 0)
            canary.add_metric([row.name], row.canary_percent / 100 if row.canary else 0.0)
            for fam in families or []:
                _copy(fam, row.name, requests, latency)
        yield from (up, canary, requests, latency)

    def _drift(self) -> Iterator[Metric]:
        """Each endpoint's drift report (``workbench endpoints drift``, default thresholds),
        cached: recomputed only when its request log moved, at most every 30 s."""
        from workbench_dsl.backends.deployer import local_deployer
        from workbench_dsl.backends.drift.report import cached_report

        rows = local_deployer(self.root).store.all() if self.root.runs_db.exists() else []
        labels = ["endpoint", "revision", "feature"]
        psi = GaugeMetricFamily(
            "workbench_endpoint_feature_drift_psi",
            "Population stability index of a feature: the stable revision's logged inputs "
            "against its model's training data.",
            labels=labels,
        )
        p_value = GaugeMetricFamily(
            "workbench_endpoint_feature_drift_p_value",
            "p-value of the feature's two-sample test (Kolmogorov-Smirnov, or chi-square for "
            "a categorical feature).",
            labels=labels,
        )
        drifted = GaugeMetricFamily(
            "workbench_endpoint_feature_drifted",
            "1 when the feature drifted (PSI >= 0.2 and p < 0.01), else 0.",
            labels=labels,
        )
        count = GaugeMetricFamily(
            "workbench_endpoint_drifted_features",
            "How many features of the endpoint drifted.",
            labels=["endpoint", "revision"],
        )
        instances = GaugeMetricFamily(
            "workbench_endpoint_drift_instances",
            "Logged instances the drift figures were computed from.",
            labels=["endpoint", "revision"],
        )
        for row in sorted(rows, key=lambda r: r.name):
            if row.stable is None:
                continue
            report = cached_report(self.root, row.name)
            if isinstance(report, Exception):
                continue  # too few requests, or no training data found: no figures
            rev = report.revision
            for f in report.features:
                psi.add_metric([row.name, rev, f.name], f.psi)
                p_value.add_metric([row.name, rev, f.name], f.p_value)
                drifted.add_metric([row.name, rev, f.name], 1.0 if f.drifted else 0.0)
            count.add_metric([row.name, rev], len(report.drifted_features))
            instances.add_metric([row.name, rev], report.instances)
        yield from (psi, p_value, drifted, count, instances)

    def _scrape(self, port: int) -> list[Metric] | None:
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=self.scrape_timeout) as r:
                text = r.read(8 << 20).decode("utf-8", errors="replace")
            return [f for f in text_string_to_metric_families(text) if f.name in ENDPOINT_SERIES]
        except (OSError, ValueError):
            return None


def _le(bound: float) -> str:
    return f"{float(bound)}"


def _counter(name: str, doc: str, labels: list[str], values: dict[Any, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        fam.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return fam


def _copy(
    fam: Metric,
    endpoint: str,
    requests: CounterMetricFamily,
    latency: HistogramMetricFamily,
) -> None:
    """Add one endpoint's own series to ours (its labels name the endpoint already; the
    endpoint's name from the table wins, so a server cannot speak for another)."""
    by_rev: dict[str, dict[str, Any]] = defaultdict(lambda: {"buckets": [], "sum": 0.0})
    for s in fam.samples:
        labels = dict(s.labels)
        rev = labels.get("revision", "")
        if s.name == "workbench_endpoint_requests_total":
            requests.add_metric([endpoint, rev, labels.get("outcome", "")], s.value)
        elif s.name == "workbench_endpoint_predict_seconds_bucket":
            by_rev[rev]["buckets"].append((labels["le"], s.value))
        elif s.name == "workbench_endpoint_predict_seconds_sum":
            by_rev[rev]["sum"] = s.value
    for rev, h in sorted(by_rev.items()):
        latency.add_metric([endpoint, rev], h["buckets"], h["sum"])


def registry(root: LocalRoot) -> CollectorRegistry:
    """A registry holding only the workbench collector for ``root``."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WorkbenchCollector(root))
    return reg


def exposition(root: LocalRoot) -> bytes:
    """The text exposition (format 0.0.4) of ``root``'s metrics, as ``/metrics`` serves it."""
    from prometheus_client import generate_latest

    return generate_latest(registry(root))
