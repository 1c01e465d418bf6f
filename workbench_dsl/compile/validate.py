"""Checks on a compiled PipelineSpec that KFP's compiler does not make.

KFP compiles a dependency cycle made with ``.after()`` without complaint
(kubeflow/pipelines#9864); the pipeline then never runs. We refuse it.
"""

from __future__ import annotations

from typing import Any

from workbench_dsl._graph import find_cycle
from workbench_dsl.errors import PipelineDefinitionError


def dag_edges(dag: dict[str, Any]) -> dict[str, list[str]]:
    """``task -> tasks it waits for`` within one DAG of a PipelineSpec."""
    tasks = dag.get("tasks", {}) or {}
    return {name: list(t.get("dependentTasks", []) or []) for name, t in tasks.items()}


def check_cycles(spec: dict[str, Any]) -> None:
    """Raise on a dependency cycle in the root DAG or any sub-DAG."""
    dags = [("root", spec.get("root", {}).get("dag", {}))]
    for comp_name, comp in sorted((spec.get("components") or {}).items()):
        if "dag" in comp:
            dags.append((comp_name, comp["dag"]))
    for where, dag in dags:
        cycle = find_cycle(dag_edges(dag))
        if cycle:
            scope = "" if where == "root" else f" (inside {where.removeprefix('comp-')})"
            raise PipelineDefinitionError(
                f"cycle: {' -> '.join(cycle)}{scope}; remove one of the .after() calls "
                f"or data dependencies that close it"
            )
