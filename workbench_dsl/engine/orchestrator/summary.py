"""What a run returns: its options in, its summary and the pipeline's outputs out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench_dsl.engine import graph
from workbench_dsl.engine import params as ptypes

if TYPE_CHECKING:
    from workbench_dsl.engine.orchestrator.loop import Orchestrator


@dataclass
class RunOptions:
    cache: bool = True
    max_parallel: int = 8


@dataclass
class RunSummary:
    """What a finished (or cancelled) run produced."""

    run_id: str
    pipeline: str
    status: str
    tasks: list[dict[str, Any]]
    outputs: dict[str, Any]
    failures: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    cost: float = 0.0


def summarize(o: Orchestrator) -> RunSummary:
    if o.cancelled:
        status = graph.CANCELLED
    else:
        status = graph.SUCCEEDED if o.root_status == graph.SUCCEEDED else graph.FAILED
    records = o.recorder.summary_rows()
    tasks = [
        {
            "name": r["task"],
            "status": r["status"],
            "cached": bool(r.get("cached")),
            "attempts": int(r.get("attempts") or 0),
            "duration_s": round(float(r.get("duration_s") or 0.0), 3),
        }
        for r in sorted(records, key=_run_order)
        if r.get("kind") in ("container", "importer", "stub")
    ]
    return RunSummary(
        run_id=o.run_id,
        pipeline=o.spec.name,
        status=status,
        tasks=tasks,
        outputs=pipeline_outputs(o),
        failures=o.failures or (_unexplained(o) if status == graph.FAILED else []),
        notices=o.notices,
        duration_s=time.time() - o.started,
        cost=sum(float(r.get("cost") or 0.0) for r in records),
    )


def _unexplained(o: Orchestrator) -> list[dict[str, Any]]:
    """Why a run failed when no task failed: its top-level tasks that did not succeed.

    (A loop whose iterations could never start ended the run FAILED with nothing said.)
    """
    out = []
    for q, node in o.recorder.nodes.items():
        status = node.state.stored
        if node.scope.prefix == "" and status in (graph.FAILED, graph.NOT_RUN):
            why = node.error or node.reason or f"ended {status.lower().replace('_', ' ')}"
            out.append({"task": q, "error": why, "log_path": None})
    return out


def _run_order(r: dict[str, Any]) -> tuple[float, int]:
    """Tasks in the order they started; those that never did, in spec order, after them."""
    started = r.get("started_at")
    return (float(started) if started is not None else float("inf"), int(r.get("seq") or 0))


def pipeline_outputs(o: Orchestrator) -> dict[str, Any]:
    """The pipeline's outputs (``root.outputDefinitions``), as the CLI and Python API show them."""
    if o.root_scope is None:
        return {}
    params, arts = graph.dag_outputs(o.root_scope)
    out_defs = o.spec.root.get("outputDefinitions") or {}
    pdefs = out_defs.get("parameters") or {}
    adefs = out_defs.get("artifacts") or {}
    result: dict[str, Any] = {}
    for name, value in params.items():
        try:
            result[name] = ptypes.output_value(value, (pdefs.get(name) or {}).get("parameterType"))
        except ptypes.ParameterTypeError:
            result[name] = value
    for name, listed in arts.items():
        shown = [artifact_view(a) for a in listed]
        result[name] = shown if (adefs.get(name) or {}).get("isArtifactList") else shown[0]
    return result


def artifact_view(a: dict[str, Any]) -> dict[str, Any]:
    """An artifact as the CLI and the Python API show it."""
    return {
        "uri": a.get("uri"),
        "path": a.get("uri") if a.get("sha256") or a.get("absent") else None,
        "type": (a.get("type") or {}).get("schemaTitle"),
        "metadata": a.get("metadata") or {},
        "sha256": a.get("sha256"),
        "size": a.get("size"),
    }
