"""What the inputs of each DAG hold before the run starts, where that is known up front.

A secret, config map or PVC a task reads may be named by an input of the DAG the
task is in: a pipeline parameter handed down through sub-pipelines, loops and
conditions (``inner(sname=secret)``, ``pipelinechannel--secret``), or a constant a
parent task passes. The preflight follows those hand-offs from the root's
parameters to check the objects before anything runs; a name that only a task's
output or a loop's item gives is left to the run (``None`` among the values).
"""

from __future__ import annotations

import json
from typing import Any

from workbench_dsl.engine.params import default_of
from workbench_dsl.engine.spec import PipelineSpec, component_ref, is_dag

ROOT = ""  # the pipeline's own DAG, among component names

#: component name -> input name -> the values it may hold (None: one only the run knows)
Values = dict[str, dict[str, set[str | None]]]


def known_inputs(spec: PipelineSpec, params: dict[str, Any]) -> Values:
    """The possible values of every DAG's string-like inputs, from the run's parameters."""
    out: Values = {ROOT: {k: {_text(v)} for k, v in params.items()}}
    dags = [(ROOT, spec.root.get("dag") or {})]
    dags += [(n, c["dag"]) for n, c in spec.components.items() if is_dag(c)]
    changed = True
    while changed:  # until every hand-off has passed on what its parent may hold
        changed = False
        for name, dag in dags:
            if name not in out:
                continue
            for task in (dag.get("tasks") or {}).values():
                child = component_ref(task)
                comp = spec.components.get(child) or {}
                if not is_dag(comp):
                    continue
                given = (task.get("inputs") or {}).get("parameters") or {}
                defs = (comp.get("inputDefinitions") or {}).get("parameters") or {}
                slot = out.setdefault(child, {})
                loop = task.get("parameterIterator") or {}
                for pname, definition in sorted(
                    defs.items(), key=lambda d: d[0] == loop.get("itemInput")
                ):
                    values = slot.setdefault(pname, set())
                    before = len(values)
                    if pname in given:
                        values.update(_of(given[pname], out[name]))
                    elif pname == loop.get("itemInput"):  # after the list it loops over
                        values.update(_items(loop.get("items") or {}, slot))
                    else:
                        has, default = default_of(definition)
                        values.add(_text(default) if has else None)
                    changed = changed or len(values) != before
    return out


def executor_dags(spec: PipelineSpec) -> dict[str, set[str]]:
    """Executor label -> the DAGs (component names, ``ROOT``) that hold a task running it."""
    out: dict[str, set[str]] = {}
    dags = [(ROOT, spec.root.get("dag") or {})]
    dags += [(n, c["dag"]) for n, c in spec.components.items() if is_dag(c)]
    for dag_name, dag in dags:
        for task in (dag.get("tasks") or {}).values():
            label = (spec.components.get(component_ref(task)) or {}).get("executorLabel")
            if label:
                out.setdefault(str(label), set()).add(dag_name)
    return out


def value_of(ref: dict[str, Any], parent: dict[str, set[str | None]] | None) -> set[str | None]:
    """The values a task input may hold, in a DAG whose inputs may hold ``parent``."""
    return _of(ref, parent or {})


def _of(ref: dict[str, Any], parent: dict[str, set[str | None]]) -> set[str | None]:
    if "componentInputParameter" in ref:
        return parent.get(str(ref["componentInputParameter"]), {None})
    if "runtimeValue" in ref:
        return {_text((ref["runtimeValue"] or {}).get("constant"))}
    return {None}  # a task's output, a loop's item: only the run knows


def _items(items: dict[str, Any], slot: dict[str, set[str | None]]) -> set[str | None]:
    """A ``ParallelFor``'s items: a literal list, or a list its DAG's input holds."""
    if "raw" in items:
        lists: list[Any] = [items["raw"]]
    elif "inputParameter" in items:
        lists = list(slot.get(str(items["inputParameter"]), {None}))
    else:
        return {None}
    out: set[str | None] = set()
    for text in lists:
        try:
            parsed = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, list):
            return {None}
        out.update(_text(v) for v in parsed)
    return out


def _text(value: Any) -> str | None:
    """A value as a name would be written: text as it is, a list or number as JSON."""
    if value in (None, ""):
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
