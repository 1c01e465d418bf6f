"""Runs side by side: parameters, outputs, metrics, and each task's status, time, cache and cost.

``workbench runs compare`` and the dashboard's compare page both show
:func:`compare_runs`, so the two agree. A row ``differs`` when its values are
not all equal across the runs (durations always differ a little, so they are
shown but never marked).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from workbench_dsl.client._artifacts import ArtifactRef
from workbench_dsl.client._runs import Run


def run_metrics(run: Run) -> dict[str, float]:
    """Every metric of a run, as ``<task>.<metric>``: ``Metrics`` outputs, the best value
    of each ``@sweep`` (under its objective's name) and what each ``@register`` step's
    evaluation returned (read from the registry's tracking runs of this run)."""
    out: dict[str, float] = {}
    calls = _launcher_calls(run)
    registers = []
    for task in run.tasks.values():
        for k, v in task.metrics().items():
            out[f"{task.name}.{k}"] = v
        call = calls.get(task.name)
        best = task.outputs.get("best_value")
        if call is not None and call.kind == "sweep" and isinstance(best, int | float):
            out[f"{task.name}.{call.config.get('objective') or 'best_value'}"] = float(best)
        if call is not None and call.kind == "register" and task.attempts and not task.cached:
            registers.append((task.name, call.config.get("tracking_uri") or None))
    for uri in {u for _, u in registers}:
        for step, values in _evaluations(run.id, uri).items():
            if step in run.tasks:
                out.update({f"{step}.{k}": v for k, v in values.items()})
    return out


def _launcher_calls(run: Run) -> dict[str, Any]:
    """The launcher call of each launcher step of the run, by task name."""
    from workbench_dsl.client._launcher import launcher_call, program_of
    from workbench_dsl.engine.spec import PipelineSpec

    if "workbench_dsl.runtime." not in run.spec_text:
        return {}  # no launcher step: skip parsing the spec
    try:
        spec = PipelineSpec.parse(run.spec_text)
    except Exception:  # a spec this version cannot read: no launcher metrics
        return {}
    out = {}
    for task in run.tasks.values():
        try:
            call = launcher_call(program_of(spec.executor(task.executor or "")))
        except Exception:
            call = None
        if call is not None:
            out[task.name] = call
    return out


@functools.lru_cache(maxsize=8)
def _registry(tracking_uri: str | None, home: str) -> Any:
    """One registry client per URI (and local root): a page of many runs opens it once."""
    from workbench_dsl.backends.registry import open_registry

    del home  # part of the key: the default registry lives under the local root
    return open_registry(tracking_uri)


def _evaluations(run_id: str, tracking_uri: str | None) -> dict[str, dict[str, float]]:
    """What the registry recorded of the run's evaluations ({} when it cannot be read)."""
    from workbench_dsl.paths import local_root

    try:
        return dict(_registry(tracking_uri, str(local_root().root)).evaluations(run_id))
    except Exception:  # the registry is gone or unreachable: the other metrics still show
        return {}


def shown(value: Any) -> Any:
    """A value as a comparison shows it: artifacts by their digest (or URI)."""
    if isinstance(value, ArtifactRef):
        if value.sha256:
            return f"sha256:{value.sha256[:12]}"
        return value.metadata if value.metadata else value.uri
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


def _differs(values: list[Any]) -> bool:
    keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
    return len(set(keys)) > 1


def _rows(per_run: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names: list[str] = []
    for d in per_run:
        names += [n for n in d if n not in names]
    rows = []
    for name in names:
        values = [shown(d.get(name)) for d in per_run]
        rows.append({"name": name, "values": values, "differs": _differs(values)})
    return rows


def compare_runs(runs: list[Run]) -> dict[str, Any]:
    """The comparison of ``runs`` (in the order given) as one JSON-ready dict.

    Keys: ``runs`` (one summary per run), ``params``, ``outputs``, ``metrics`` (rows of
    ``name``, ``values`` -- one per run, None where a run has none -- and ``differs``)
    and ``tasks`` (rows of ``name``, ``status``, ``cached``, ``duration_s``, ``cost``
    lists and ``differs``, which says the status or the cache use differ).
    """
    summaries = [
        {
            "run_id": r.id,
            "pipeline": r.pipeline,
            "experiment": r.experiment,
            "status": r.status,
            "created_at": r.created_at.isoformat(timespec="seconds"),
            "duration_s": r.duration_s,
            "cost": r.cost,
            "cache_hits": sum(1 for t in r.tasks.values() if t.cached),
            "tasks": len(r.tasks),
        }
        for r in runs
    ]
    task_names: list[str] = []
    for r in runs:
        task_names += [n for n in r.tasks if n not in task_names]
    tasks = []
    for name in task_names:
        got = [r.tasks.get(name) for r in runs]
        status = [t.status if t else None for t in got]
        cached = [t.cached if t else None for t in got]
        tasks.append(
            {
                "name": name,
                "status": status,
                "cached": cached,
                "duration_s": [t.duration_s if t else None for t in got],
                "cost": [t.cost if t else None for t in got],
                "differs": _differs(status) or _differs(cached),
            }
        )
    return {
        "runs": summaries,
        "params": _rows([r.params for r in runs]),
        "outputs": _rows([r.outputs for r in runs]),
        "metrics": _rows([r.metrics for r in runs]),
        "tasks": tasks,
    }
