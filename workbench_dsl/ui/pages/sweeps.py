"""Sweeps: every ``@sweep`` step's ``trials`` Dataset, as a table and as charts.

A sweep step writes ``trials`` (CSV: ``trial``, ``state``, the objective,
``duration_s``, ``params.*``, ``metrics.*``, ``error``) with the objective, goal
and best trial in its metadata (``docs/train-sweep.md``); this page reads it back.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from workbench_dsl.errors import UsageError
from workbench_dsl.ui.charts import Series, xy_chart
from workbench_dsl.ui.previews import local_path, open_regular
from workbench_dsl.ui.render import page
from workbench_dsl.ui.svg import PALETTE

router = APIRouter()
MAX_TRIALS = 5000


def sweep_artifacts(conn: Any, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``trials`` Datasets written by sweep steps, with their run's pipeline."""
    rows = conn.execute(
        "SELECT a.run_id, a.task, a.uri, a.metadata_json, a.created_at, r.pipeline, r.status"
        " FROM artifacts a JOIN runs r ON r.run_id = a.run_id"
        " WHERE a.name = 'trials' ORDER BY a.created_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for r in rows:
        meta = json.loads(r["metadata_json"] or "{}")
        if "objective" not in meta:
            continue  # a Dataset that happens to be called trials
        out.append({**dict(r), "meta": meta})
    return out


def read_trials(uri: str) -> tuple[list[str], list[dict[str, str]]]:
    path = local_path({"uri": uri})
    try:
        raw = open_regular(path) if path is not None else None  # never through a link
    except OSError:
        raw = None
    if raw is None:
        raise UsageError(f"the trials file {uri} is gone (or is a link, never followed)")
    with io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for _, r in zip(range(MAX_TRIALS), reader, strict=False)]
        return list(reader.fieldnames or []), rows


def _float(v: str | None) -> float | None:
    try:
        x = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and math.isfinite(x) else None


def charts(
    columns: list[str], trials: list[dict[str, str]], objective: str, goal: str
) -> dict[str, Any]:
    """The objective against the trial number with its best so far, and each parameter
    against the objective."""
    points = []
    for t in trials:
        n, v = _float(t.get("trial")), _float(t.get(objective))
        if n is not None and v is not None:
            points.append((n, v, t))
    points.sort(key=lambda p: p[0])
    best: list[tuple[float, float]] = []
    for n, v, _ in points:
        if not best:
            best.append((n, v))
        else:
            prev = best[-1][1]
            best.append((n, max(prev, v) if goal == "maximize" else min(prev, v)))
    progress = (
        xy_chart(
            [
                Series(
                    objective,
                    [(n, v) for n, v, _ in points],
                    tips=[
                        f"trial {int(n)}: {objective} {v:.4g} ({t.get('state')})"
                        for n, v, t in points
                    ],
                ),
                Series("best so far", best, style="step", color=PALETTE[1]),
            ],
            x_label="trial",
            y_label=objective,
        )
        if points
        else None
    )
    per_param = []
    for col in columns:
        if not col.startswith("params."):
            continue
        name = col[len("params.") :]
        raw = [(t.get(col), v, t) for _, v, t in points if t.get(col) not in (None, "")]
        if not raw:
            continue
        nums = [_float(x) for x, _, _ in raw]
        if all(x is not None for x in nums):
            xs = [x for x in nums if x is not None]
            log = min(xs) > 0 and max(xs) / min(xs) >= 100
            series = Series(
                name,
                [(x, v) for x, (_, v, _) in zip(xs, raw, strict=True)],
                tips=[f"trial {t.get('trial')}: {name}={x} -> {v:.4g}" for x, v, t in raw],
            )
            per_param.append(
                (
                    name,
                    xy_chart(
                        [series],
                        x_label=name + (" (log)" if log else ""),
                        y_label=objective,
                        log_x=log,
                    ),
                )
            )
        else:
            cats = sorted({str(x) for x, _, _ in raw})
            series = Series(
                name,
                [(float(cats.index(str(x))), v) for x, v, _ in raw],
                tips=[f"trial {t.get('trial')}: {name}={x} -> {v:.4g}" for x, v, t in raw],
            )
            per_param.append(
                (name, xy_chart([series], x_label=name, y_label=objective, categories=cats))
            )
    return {"progress": progress, "per_param": per_param}


@router.get("/sweeps")
def sweeps(request: Request) -> Response:
    """Every sweep, newest first."""
    found = sweep_artifacts(request.app.state.ui.runs().conn)
    return page(request, "sweeps.html", nav="sweeps", title="Sweeps", sweeps=found)


@router.get("/sweeps/{run_id}/{task:path}")
def sweep(request: Request, run_id: str, task: str) -> Response:
    """One sweep: its trials, the objective per trial and each parameter against it."""
    store = request.app.state.ui.runs()
    run = store.find_run(run_id)
    row = store.conn.execute(
        "SELECT uri, metadata_json FROM artifacts WHERE run_id=? AND task=? AND name='trials'"
        " ORDER BY id DESC LIMIT 1",
        (run["run_id"], task),
    ).fetchone()
    if row is None:
        raise UsageError(f"run {run['run_id']} has no sweep step {task!r}")
    meta = json.loads(row["metadata_json"] or "{}")
    objective = str(meta.get("objective") or "objective")
    goal = str(meta.get("goal") or "maximize")
    columns, trials = read_trials(row["uri"])
    return page(
        request,
        "sweep.html",
        nav="sweeps",
        title=f"Sweep {task}",
        run=dict(run),
        task=task,
        meta=meta,
        objective=objective,
        goal=goal,
        columns=columns,
        trials=trials,
        best=str(meta.get("best_trial", "")),
        **charts(columns, trials, objective, goal),
    )
