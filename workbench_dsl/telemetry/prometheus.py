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
#: The endpoint server's own series, re-exposed: name -> (type, help). See
#: backends/deployer/_router.py (requests, latency), _activity.py (idle) and
#: _activator.py (cold starts, replicas of a scale-to-zero endpoint), _llm_engine.py
#: (an LLM endpoint's tokens, time to first token, batch sizes).
ENDPOINT_SERIES: dict[str, tuple[str, str]] = {
    "workbench_endpoint_requests": (
        "counter",
        "Prediction requests by endpoint, revision and outcome (ok, bad_input, error).",
    ),
    "workbench_endpoint_predict_seconds": (
        "histogram",
        "Time in the revision's predict, by endpoint and revision.",
    ),
    "workbench_endpoint_idle_seconds": (
        "counter",
        "Seconds with no request in flight since the endpoint's server started "
        "(1 - rate() is the busy share over any window).",
    ),
    "workbench_endpoint_idle_ratio": (
        "gauge",
        "Share of the last 5 minutes with no request in flight (0..1).",
    ),
    "workbench_endpoint_cold_start_seconds": (
        "histogram",
        "Cold starts of scale-to-zero endpoints: from a request reaching the sleeping "
        "endpoint to its model server answering.",
    ),
    "workbench_llm_prompt_tokens": ("counter", "Prompt tokens of accepted LLM requests."),
    "workbench_llm_completion_tokens": ("counter", "Tokens generated for LLM requests."),
    "workbench_llm_time_to_first_token_seconds": (
        "histogram",
        "From a request's arrival to its first generated token.",
    ),
    "workbench_llm_batch_size": ("histogram", "Sequences generated together in one batch."),
}

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
    "workbench_llm_prompt_tokens_total": "counter",
    "workbench_llm_completion_tokens_total": "counter",
    "workbench_llm_time_to_first_token_seconds": "histogram",
    "workbench_llm_batch_size": "histogram",
    "workbench_endpoint_feature_drift_psi": "gauge",
    "workbench_endpoint_feature_drift_p_value": "gauge",
    "workbench_endpoint_feature_drifted": "gauge",
    "workbench_endpoint_drifted_features": "gauge",
    "workbench_endpoint_drift_instances": "gauge",
    "workbench_endpoint_idle_seconds_total": "counter",
    "workbench_endpoint_idle_ratio": "gauge",
    "workbench_endpoint_cold_start_seconds": "histogram",
    "workbench_endpoint_last_cold_start_seconds": "gauge",
    "workbench_endpoint_replicas": "gauge",
    "workbench_endpoint_cost_dollars_per_hour": "gauge",
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
                if _in_flight(r["status"], r["pid"], r["host"]):
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
            if r["status"] == "RUNNING" and _in_flight(
                r["run_status"], r["run_pid"], r["run_host"]
            ):
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
            "What the tasks running now cost per hour (their profiles' cost_per_hour), by "
            "pipeline; tasks of a run whose engine is gone are not running.",
            labels=["pipeline"],
        )
        for pipeline, dollars in sorted(burn.items()):
            g.add_metric([pipeline], dollars)
        yield g

    # -- endpoints ------------------------------------------------------------------------

    def _endpoints(self) -> Iterator[Metric]:
        from workbench_dsl.backends.deployer import local_deployer

        store = local_deployer(self.root).store if self.root.runs_db.exists() else None
        rows = store.all() if store is not None else []
        up = GaugeMetricFamily(
            "workbench_endpoint_up",
            "1 when the endpoint's server (or, scaled to zero, its activator) answered this "
            "scrape, 0 when it is down or stopped.",
            labels=["endpoint"],
        )
        canary = GaugeMetricFamily(
            "workbench_endpoint_canary_ratio",
            "Share of requests routed to the canary revision (0 when there is none).",
            labels=["endpoint"],
        )
        replicas = GaugeMetricFamily(
            "workbench_endpoint_replicas",
            "Model server processes running now (0 while scaled to zero or stopped).",
            labels=["endpoint"],
        )
        cost = GaugeMetricFamily(
            "workbench_endpoint_cost_dollars_per_hour",
            "What the endpoint's running model servers cost per hour now (its compute "
            "profile's cost_per_hour each; 0 while scaled to zero).",
            labels=["endpoint"],
        )
        last_cold = GaugeMetricFamily(
            "workbench_endpoint_last_cold_start_seconds",
            "Duration of the endpoint's last cold start that worked.",
            labels=["endpoint"],
        )
        copied = {name: Metric(name, doc, typ) for name, (typ, doc) in ENDPOINT_SERIES.items()}
        for row in sorted(rows, key=lambda r: r.name):
            assert store is not None
            scaling = store.scaling(row.name)
            families = self._scrape(row.port) if row.state == "running" else None
            up.add_metric([row.name], 1 if families is not None else 0)
            canary.add_metric([row.name], row.canary_percent / 100 if row.canary else 0.0)
            n = 1.0 if families is not None else 0.0
            for fam in families or []:
                if fam.name == "workbench_endpoint_replicas":  # an activator says
                    n = sum(s.value for s in fam.samples)
                elif fam.name in copied:
                    _relabel(fam, row.name, copied[fam.name])
            replicas.add_metric([row.name], n)
            cost.add_metric([row.name], n * scaling.cost_per_hour)
            summary = store.cold_start_summary(row.name)
            if summary["last_cold_start_s"] is not None:
                last_cold.add_metric([row.name], summary["last_cold_start_s"])
        yield from (up, canary, replicas, cost, last_cold, *copied.values())

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
            wanted = {*ENDPOINT_SERIES, "workbench_endpoint_replicas"}
            return [f for f in text_string_to_metric_families(text) if f.name in wanted]
        except (OSError, ValueError):
            return None


def _le(bound: float) -> str:
    return f"{float(bound)}"


def _counter(name: str, doc: str, labels: list[str], values: dict[Any, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        fam.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return fam


def _relabel(fam: Metric, endpoint: str, into: Metric) -> None:
    """Add one endpoint's own samples to ours, with the endpoint's name from the table (a
    server cannot speak for another endpoint)."""
    for s in fam.samples:
        if s.name.endswith("_created"):
            continue
        into.add_sample(s.name, {**s.labels, "endpoint": endpoint}, s.value)


def _in_flight(status: str, pid: int | None, host: str | None) -> bool:
    """Whether a stored run is running now (not one whose engine died: ``INTERRUPTED``)."""
    from workbench_dsl.engine.run_view import run_status

    return run_status({"status": status, "pid": pid, "host": host}) == "RUNNING"


def registry(root: LocalRoot) -> CollectorRegistry:
    """A registry holding only the workbench collector for ``root``."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WorkbenchCollector(root))
    return reg


def exposition(root: LocalRoot) -> bytes:
    """The text exposition (format 0.0.4) of ``root``'s metrics, as ``/metrics`` serves it."""
    from prometheus_client import generate_latest

    return generate_latest(registry(root))
