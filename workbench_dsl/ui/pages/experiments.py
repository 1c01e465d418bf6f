"""Experiments: the runs recorded under each one, each metric plotted across them, and a
side-by-side comparison of selected runs (the same :func:`compare_runs` as the CLI)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from workbench_dsl.errors import UsageError
from workbench_dsl.ui.charts import Series, xy_chart
from workbench_dsl.ui.render import page

router = APIRouter()

#: Most runs an experiment page reads (newest first) and a comparison takes.
MAX_RUNS = 200
MAX_COMPARE = 12


def _experiments(store: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": r["experiment"],
            "runs": int(r["runs"]),
            "pipelines": sorted(set((r["pipelines"] or "").split(","))),
            "succeeded": int(r["succeeded"] or 0),
            "failed": int(r["failed"] or 0),
            "last_at": r["last_at"],
        }
        for r in store.experiments()
    ]


def metric_charts(runs: list[Any]) -> list[tuple[str, Any]]:
    """One chart per metric: its value in each run, oldest run first."""
    ordered = sorted(runs, key=lambda r: r.created_at)
    names: list[str] = []
    for r in ordered:
        names += [n for n in r.metrics if n not in names]
    charts = []
    for name in names:
        points, tips = [], []
        for i, r in enumerate(ordered):
            if name in r.metrics:
                points.append((float(i), r.metrics[name]))
                params = " ".join(f"{k}={v}" for k, v in r.params.items())
                tips.append(f"{r.id}: {name} = {r.metrics[name]:.6g} ({params})")
        series = Series(name, points, style="line", tips=tips)
        labels = [r.id[:6] for r in ordered]
        charts.append((name, xy_chart([series], x_label="run", y_label=name, categories=labels)))
    return charts


@router.get("/experiments")
def experiments(request: Request) -> Response:
    """Every experiment, the most recently used first."""
    found = _experiments(request.app.state.ui.runs())
    return page(
        request, "experiments.html", nav="experiments", title="Experiments", experiments=found
    )


@router.get("/experiments/{name:path}")
def experiment(request: Request, name: str) -> Response:
    """One experiment: its runs (select some to compare) and each metric across them."""
    from workbench_dsl.client import list_runs

    state = request.app.state.ui
    known = [e["name"] for e in _experiments(state.runs())]
    if name not in known:
        raise UsageError(f"no experiment {name!r} (known: {', '.join(known) or 'none yet'})")
    runs = list_runs(experiment=name, limit=MAX_RUNS, root=state.root.root)
    params: list[str] = []
    metrics: list[str] = []
    for r in runs:
        params += [p for p in r.params if p not in params]
        metrics += [m for m in r.metrics if m not in metrics]
    return page(
        request,
        "experiment.html",
        nav="experiments",
        title=f"Experiment {name}",
        name=name,
        runs=runs,
        params=params,
        metrics=metrics,
        charts=metric_charts(runs),
    )


@router.get("/compare")
def compare(request: Request, runs: list[str] = Query(default=[])) -> Response:
    """The selected runs side by side, what differs marked, each metric plotted across them."""
    from workbench_dsl.client import compare_runs, get_run

    ids = [r for part in runs for r in part.split(",") if r.strip()]
    if len(ids) < 2:
        raise UsageError("select two or more runs to compare")
    if len(ids) > MAX_COMPARE:
        raise UsageError(f"compare at most {MAX_COMPARE} runs at once")
    root = request.app.state.ui.root.root
    loaded = [get_run(r, root=root) for r in ids]
    return page(
        request,
        "compare.html",
        nav="experiments",
        title="Compare runs",
        data=compare_runs(loaded),
        charts=metric_charts(loaded),
    )
