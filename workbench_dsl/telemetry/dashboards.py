"""Grafana dashboards for the workbench metrics, built with Grafana's own foundation SDK.

https://github.com/grafana/grafana-foundation-sdk -- typed builders generated from
Grafana's schemas. ``docs/grafana/*.json`` are written by
``python -m workbench_dsl.telemetry.dashboards docs/grafana`` (the SDK is a dev
dependency: nothing at run time imports this module); a test checks that the files are
what this code builds and that every query names only metrics the exposition has.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.builders import stat as gstat
from grafana_foundation_sdk.builders import timeseries as gts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

_DS = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _query(expr: str, legend: str) -> gprom.Dataquery:
    return gprom.Dataquery().expr(expr).legend_format(legend).datasource(_DS)


def _series(title: str, unit: str, *queries: gprom.Dataquery, width: int = 12) -> gts.Panel:
    panel = gts.Panel().title(title).unit(unit).datasource(_DS).height(8).span(width)
    for i, q in enumerate(queries):
        panel = panel.with_target(q.ref_id(chr(ord("A") + i)))
    return panel


def _stat(title: str, unit: str, query: gprom.Dataquery) -> gstat.Panel:
    return (
        gstat.Panel()
        .title(title)
        .unit(unit)
        .datasource(_DS)
        .height(4)
        .span(6)
        .with_target(query.ref_id("A"))
    )


def _base(uid: str, title: str) -> gdash.Dashboard:
    return (
        gdash.Dashboard(title)
        .uid(uid)
        .tags(["workbench"])
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(
            gdash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
    )


def pipelines() -> gdash.Dashboard:
    """Pipeline success rate, step duration, retries, cache hits and cost per run."""
    return (
        _base("workbench-pipelines", "workbench: pipelines")
        .with_row(gdash.Row("Now"))
        .with_panel(
            _stat("Runs in progress", "none", _query("sum(workbench_runs_in_progress)", "runs"))
        )
        .with_panel(
            _stat(
                "Running tasks, $/hour",
                "currencyUSD",
                _query("sum(workbench_tasks_running_cost_dollars_per_hour)", "$/h"),
            )
        )
        .with_panel(
            _stat(
                "Success rate (24h)",
                "percentunit",
                _query(
                    'sum(increase(workbench_runs_total{status="SUCCEEDED"}[24h]))'
                    " / sum(increase(workbench_runs_total[24h]))",
                    "success",
                ),
            )
        )
        .with_panel(
            _stat(
                "Cost per run (24h)",
                "currencyUSD",
                _query(
                    "sum(increase(workbench_run_cost_dollars_sum[24h]))"
                    " / sum(increase(workbench_run_cost_dollars_count[24h]))",
                    "$/run",
                ),
            )
        )
        .with_row(gdash.Row("Runs"))
        .with_panel(
            _series(
                "Pipeline success rate",
                "percentunit",
                _query(
                    'sum by (pipeline) (increase(workbench_runs_total{status="SUCCEEDED"}[1h]))'
                    " / sum by (pipeline) (increase(workbench_runs_total[1h]))",
                    "{{pipeline}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Finished runs by status",
                "short",
                _query(
                    "sum by (pipeline, status) (increase(workbench_runs_total[1h]))",
                    "{{pipeline}} {{status}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Cost per run",
                "currencyUSD",
                _query(
                    "sum by (pipeline) (increase(workbench_run_cost_dollars_sum[1h]))"
                    " / sum by (pipeline) (increase(workbench_run_cost_dollars_count[1h]))",
                    "{{pipeline}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Spend rate of running tasks",
                "currencyUSD",
                _query(
                    "sum by (pipeline) (workbench_tasks_running_cost_dollars_per_hour)",
                    "{{pipeline}} $/h",
                ),
            )
        )
        .with_row(gdash.Row("Steps"))
        .with_panel(
            _series(
                "Step duration (p95)",
                "s",
                _query(
                    "histogram_quantile(0.95, sum by (pipeline, component, le)"
                    " (rate(workbench_task_duration_seconds_bucket[1h])))",
                    "{{pipeline}}/{{component}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Retries and cache hits",
                "short",
                _query(
                    "sum by (pipeline) (increase(workbench_task_retries_total[1h]))",
                    "{{pipeline}} retries",
                ),
                _query(
                    "sum by (pipeline) (increase(workbench_task_cache_hits_total[1h]))",
                    "{{pipeline}} cache hits",
                ),
            )
        )
        .with_panel(
            _series(
                "Failed steps",
                "short",
                _query(
                    'sum by (pipeline, component) (increase(workbench_tasks_total{status="FAILED"}[1h]))',
                    "{{pipeline}}/{{component}}",
                ),
            )
        )
    )


def endpoints() -> gdash.Dashboard:
    """Endpoint traffic, errors, latency, canary share and drift."""
    return (
        _base("workbench-endpoints", "workbench: endpoints")
        .with_panel(
            _series(
                "Requests per second",
                "reqps",
                _query(
                    "sum by (endpoint, revision) (rate(workbench_endpoint_requests_total[5m]))",
                    "{{endpoint}} {{revision}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Error ratio",
                "percentunit",
                _query(
                    'sum by (endpoint) (rate(workbench_endpoint_requests_total{outcome!="ok"}[5m]))'
                    " / sum by (endpoint) (rate(workbench_endpoint_requests_total[5m]))",
                    "{{endpoint}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Predict latency (p95)",
                "s",
                _query(
                    "histogram_quantile(0.95, sum by (endpoint, revision, le)"
                    " (rate(workbench_endpoint_predict_seconds_bucket[5m])))",
                    "{{endpoint}} {{revision}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Canary share and up",
                "percentunit",
                _query("workbench_endpoint_canary_ratio", "{{endpoint}} canary"),
                _query("workbench_endpoint_up", "{{endpoint}} up"),
            )
        )
        .with_row(gdash.Row("Drift"))
        .with_panel(
            _series(
                "Feature drift (PSI)",
                "none",
                _query(
                    "max by (endpoint, feature) (workbench_endpoint_feature_drift_psi)",
                    "{{endpoint}} {{feature}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Drifted features",
                "short",
                _query(
                    "sum by (endpoint) (workbench_endpoint_drifted_features)",
                    "{{endpoint}} drifted",
                ),
                _query(
                    "sum by (endpoint) (workbench_endpoint_drift_instances)",
                    "{{endpoint}} instances compared",
                ),
            )
        )
    )


DASHBOARDS = {"workbench-pipelines": pipelines, "workbench-endpoints": endpoints}


def render(name: str) -> str:
    """The dashboard ``name`` as the JSON Grafana imports (stable key order)."""
    built: Any = DASHBOARDS[name]().build()
    return json.dumps(json.loads(JSONEncoder().encode(built)), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/grafana")
    out.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (out / f"{name}.json").write_text(render(name), encoding="utf-8")
        print(f"wrote {out / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
