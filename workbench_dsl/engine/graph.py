"""The run's graph at run time: scopes (DAG executions) and nodes (tasks), and how values flow.

A :class:`Scope` is one execution of a DAG: the pipeline's root, a nested
pipeline or condition group, or one iteration of a ``ParallelFor``. Its
:class:`Node` s are the DAG's tasks. Values move the way the KFP backend
moves them (``pipeline_spec.proto``: ``TaskInputsSpec`` and ``DagOutputsSpec``):

* a task's inputs come from its scope's inputs (``componentInputParameter``,
  ``componentInputArtifact``), a sibling's outputs (``taskOutputParameter``,
  ``taskOutputArtifact``), constants (``runtimeValue``), a sibling's final
  status (``taskFinalStatus``), optionally narrowed by a
  ``parameterExpressionSelector``;
* a DAG's outputs are picked from its tasks (``valueFromParameter``,
  ``valueFromOneof``, ``artifactSelectors``: the first branch that produced
  one), and a ``ParallelFor``'s outputs gather every iteration's value into a
  list (``Collected``), keeping each value's type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.engine import params as ptypes
from workbench_dsl.engine.orchestrator.states import TaskState
from workbench_dsl.engine.spec import iterator_of, trigger_strategy, upstream_tasks

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
SKIPPED = "SKIPPED"
NOT_RUN = "NOT_RUN"
CANCELLED = "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, SKIPPED, NOT_RUN, CANCELLED})

MISSING = object()
_EMPTY: dict[str, Any] = {}


class InputError(ValueError):
    """A task input that cannot be resolved; the message names it."""


@dataclass(eq=False)
class Scope:
    """One execution of a DAG."""

    prefix: str  # "" for the root, "outer/" or "for-loop-2[1]/" below it
    component: dict[str, Any]
    params: dict[str, Any]
    artifacts: dict[str, list[dict[str, Any]]]
    owner: Node | None = None  # the dag/loop node this scope belongs to
    exempt: bool = False  # runs even after a failure (inside an exit handler)
    children: dict[str, Node] = field(default_factory=dict)
    remaining: int = 0
    index: int | None = None  # iteration index for a ParallelFor iteration
    qname: str = ""  # the iteration's own name ("for-loop-2[1]"), else the owner's

    @property
    def dag(self) -> dict[str, Any]:
        """The scope's ``dag`` in the spec (read it, never change it)."""
        return self.component.get("dag") or _EMPTY


@dataclass(eq=False)
class Node:
    """One task of a scope, with its run-time state."""

    name: str
    qname: str
    scope: Scope
    task: dict[str, Any]
    comp_name: str
    component: dict[str, Any]
    kind: str  # container | importer | dag | loop | stub
    seq: int = 0
    deps: set[str] = field(default_factory=set)
    waiting: int = 0
    downstream: list[str] = field(default_factory=list)
    state: TaskState = TaskState.PENDING  # changed only by the orchestrator's transition()
    reason: str | None = None
    cached: bool = False
    reused: bool = False
    attempts: int = 0
    retries_done: int = 0
    started: float | None = None
    finished: float | None = None
    duration_s: float = 0.0
    error: str | None = None
    log_path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    out_params: dict[str, Any] = field(default_factory=dict)
    out_artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    child: Scope | None = None
    iterations: list[Scope] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    next_iteration: int = 0
    active_iterations: int = 0
    key: str | None = None
    cost_per_hour: float = 0.0
    exempt: bool = False

    @property
    def status(self) -> str:
        """The status the run store shows (``SUCCEEDED`` for a cached task too)."""
        return self.state.status

    @property
    def strategy(self) -> str:
        return trigger_strategy(self.task)

    @property
    def display(self) -> str:
        return str((self.task.get("taskInfo") or {}).get("name") or self.name)

    @property
    def is_executor(self) -> bool:
        return self.kind in ("container", "importer", "stub")


@dataclass(frozen=True)
class _TaskShape:
    """What every execution of a DAG makes of one of its tasks (the same each time)."""

    name: str
    task: dict[str, Any]
    comp_name: str
    component: dict[str, Any]
    kind: str
    completed_strategy: bool  # ALL_UPSTREAM_TASKS_COMPLETED
    deps: set[str]  # shared by the nodes made from it: read only
    downstream: list[str]  # shared too: read only


def _dag_shape(
    dag: dict[str, Any], spec_components: dict[str, Any], kind_of: Any
) -> list[_TaskShape]:
    tasks = dag.get("tasks") or {}
    names = sorted(tasks)
    deps: dict[str, set[str]] = {}
    downstream: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        deps[name] = {d for d in upstream_tasks(tasks[name]) if d in tasks}
        for d in deps[name]:
            downstream[d].append(name)
    shapes = []
    for name in names:
        task = tasks[name]
        comp_name = str((task.get("componentRef") or {}).get("name") or "")
        component = spec_components.get(comp_name) or _EMPTY  # the spec's own: read only
        shapes.append(
            _TaskShape(
                name=name,
                task=task,
                comp_name=comp_name,
                component=component,
                kind=kind_of(task, component),
                completed_strategy=trigger_strategy(task) == "ALL_UPSTREAM_TASKS_COMPLETED",
                deps=deps[name],
                downstream=downstream[name],
            )
        )
    return shapes


def make_nodes(
    scope: Scope,
    spec_components: dict[str, Any],
    kind_of: Any,
    seq: Any,
    shapes: dict[int, tuple[dict[str, Any], list[_TaskShape]]] | None = None,
) -> None:
    """Create the nodes of a scope's DAG and wire their dependencies.

    ``shapes`` (one per run) keeps what each DAG's tasks are, worked out at its first
    execution: a ``ParallelFor`` body runs thousands of times.
    """
    dag = scope.dag
    known = shapes.get(id(dag)) if shapes is not None else None
    if known is None:
        known = (dag, _dag_shape(dag, spec_components, kind_of))  # (dag kept: its id stays)
        if shapes is not None:
            shapes[id(dag)] = known
    prefix, exempt, children = scope.prefix, scope.exempt, scope.children
    for shape in known[1]:
        node = Node(
            name=shape.name,
            qname=f"{prefix}{shape.name}",
            scope=scope,
            task=shape.task,
            comp_name=shape.comp_name,
            component=shape.component,
            kind=shape.kind,
            seq=next(seq),
            deps=shape.deps,
            waiting=len(shape.deps),
            downstream=shape.downstream,
            exempt=exempt or shape.completed_strategy,
        )
        children[shape.name] = node
    scope.remaining = len(children)


# -- inputs ----------------------------------------------------------------------------------


_SELECTOR_BASE = re.compile(
    r"^\s*(parseJson\(string_value\)|string_value|struct_value|list_value|number_value|bool_value)"
)
_SUBSCRIPT = re.compile(r"""\s*\[\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(-?\d+))\s*\]""")


def select(value: Any, expression: str) -> Any:
    """Apply a ``parameterExpressionSelector`` (``parseJson(string_value)["key"]``) to a value."""
    m = _SELECTOR_BASE.match(expression)
    if not m:
        raise InputError(f"unsupported parameter expression {expression!r}")
    current = value
    if m.group(1).startswith("parseJson") and isinstance(current, str):
        try:
            current = json.loads(current)
        except json.JSONDecodeError:
            raise InputError(f"{expression!r}: value is not JSON: {current[:80]!r}") from None
    pos = m.end()
    while pos < len(expression):
        sm = _SUBSCRIPT.match(expression, pos)
        if not sm:
            if expression[pos:].strip():
                raise InputError(f"unsupported parameter expression {expression!r}")
            break
        key: Any = sm.group(1) if sm.group(1) is not None else sm.group(2)
        if key is None:
            key = int(sm.group(3))
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            raise InputError(f"{expression!r}: no {key!r} in {json.dumps(current)[:120]}") from None
        pos = sm.end()
    return current


def final_status(producer: Node, job_resource_name: str) -> dict[str, Any]:
    """The ``PipelineTaskFinalStatus`` a ``taskFinalStatus`` input receives.

    ``state`` is what the KFP backend's driver passes: the producer's execution
    state in ML Metadata -- ``COMPLETE``, ``FAILED`` or ``CANCELED`` (kfp.local
    says ``SUCCEEDED`` instead; a cluster never does).
    """
    state = {SUCCEEDED: "COMPLETE", CANCELLED: "CANCELED"}.get(producer.status, "FAILED")
    status: dict[str, Any] = {
        "state": state,
        "pipelineJobResourceName": job_resource_name,
        "pipelineTaskName": producer.display,
    }
    if state != "COMPLETE":
        status["error"] = {"code": 2, "message": producer.error or producer.reason or state}
    return status


def resolve_inputs(
    node: Node, job_resource_name: str
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], list[str]]:
    """A node's input parameters and artifacts from its scope; and the names that had no value.

    Constants are returned as written (placeholders are resolved later, once
    every other input is known).
    """
    scope = node.scope
    inputs = node.task.get("inputs") or {}
    params: dict[str, Any] = {}
    arts: dict[str, list[dict[str, Any]]] = {}
    absent: list[str] = []
    for name, spec in (inputs.get("parameters") or {}).items():
        value: Any = MISSING
        if "componentInputParameter" in spec:
            value = scope.params.get(spec["componentInputParameter"], MISSING)
        elif "taskOutputParameter" in spec:
            ref = spec["taskOutputParameter"]
            producer = scope.children.get(ref.get("producerTask", ""))
            if producer is not None and producer.status == SUCCEEDED:
                value = producer.out_params.get(ref.get("outputParameterKey", ""), MISSING)
        elif "runtimeValue" in spec:
            rv = spec["runtimeValue"] or {}
            value = rv.get("constant", MISSING)
            if value is MISSING and "constantValue" in rv:  # KFP 2.0 form
                cv = rv["constantValue"] or {}
                value = next(iter(cv.values()), None)
        elif "taskFinalStatus" in spec:
            producer = scope.children.get((spec["taskFinalStatus"] or {}).get("producerTask", ""))
            if producer is not None:
                value = final_status(producer, job_resource_name)
        if value is not MISSING and spec.get("parameterExpressionSelector"):
            value = select(value, spec["parameterExpressionSelector"])
        if value is MISSING or value is None:
            absent.append(name)
            continue
        params[name] = value
    for name, spec in (inputs.get("artifacts") or {}).items():
        found: list[dict[str, Any]] | None = None
        if "componentInputArtifact" in spec:
            found = scope.artifacts.get(spec["componentInputArtifact"])
        elif "taskOutputArtifact" in spec:
            ref = spec["taskOutputArtifact"]
            producer = scope.children.get(ref.get("producerTask", ""))
            if producer is not None and producer.status == SUCCEEDED:
                found = producer.out_artifacts.get(ref.get("outputArtifactKey", ""))
        if not found:
            absent.append(name)
            continue
        arts[name] = list(found)
    return params, arts, absent


def loop_items(node: Node) -> list[Any]:
    """The items a ``ParallelFor`` node iterates over (a list), from its resolved inputs."""
    it = iterator_of(node.task) or {}
    items_spec = it.get("items") or {}
    if it.get("kind") == "artifact":
        name = items_spec.get("inputArtifact", "")
        if name not in node.artifacts:
            raise InputError(f"ParallelFor over artifacts: input {name!r} has no value")
        return list(node.artifacts[name])
    if "raw" in items_spec:
        raw = items_spec["raw"]
        try:
            value = ptypes.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise InputError(f"ParallelFor items are not a JSON list: {str(raw)[:80]!r}") from None
    else:
        name = items_spec.get("inputParameter", "")
        if name not in node.params:
            raise InputError(f"ParallelFor items: input {name!r} has no value")
        value = node.params[name]
        if isinstance(value, str):
            try:
                value = ptypes.loads(value)
            except ValueError:
                raise InputError(f"ParallelFor items must be a list, got {value[:80]!r}") from None
    if isinstance(value, dict):
        raise InputError("ParallelFor items must be a list, got an object")
    if not isinstance(value, list):
        raise InputError(f"ParallelFor items must be a list, got {value!r}")
    return value


def parallelism(node: Node) -> int:
    """``iteratorPolicy.parallelismLimit`` (0: no limit)."""
    try:
        return max(0, int((node.task.get("iteratorPolicy") or {}).get("parallelismLimit") or 0))
    except (TypeError, ValueError):
        return 0


# -- outputs ------------------------------------------------------------------------------------


def _child_param(scope: Scope, sel: dict[str, Any]) -> Any:
    child = scope.children.get(sel.get("producerSubtask", ""))
    if child is None or child.status != SUCCEEDED:
        return MISSING
    return child.out_params.get(sel.get("outputParameterKey", ""), MISSING)


def _child_artifacts(scope: Scope, sel: dict[str, Any]) -> list[dict[str, Any]] | None:
    child = scope.children.get(sel.get("producerSubtask", ""))
    if child is None or child.status != SUCCEEDED:
        return None
    return child.out_artifacts.get(sel.get("outputArtifactKey", ""))


def dag_outputs(scope: Scope) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The outputs a finished DAG execution exposes (``dag.outputs``)."""
    outputs = scope.dag.get("outputs") or {}
    params: dict[str, Any] = {}
    for name, spec in (outputs.get("parameters") or {}).items():
        if "valueFromParameter" in spec:
            selectors = [spec["valueFromParameter"]]
        else:
            selectors = list((spec.get("valueFromOneof") or {}).get("parameterSelectors") or [])
        for sel in selectors:
            value = _child_param(scope, sel)
            if value is not MISSING and value is not None:
                params[name] = value
                break
    arts: dict[str, list[dict[str, Any]]] = {}
    for name, spec in (outputs.get("artifacts") or {}).items():
        for sel in spec.get("artifactSelectors") or []:
            found = _child_artifacts(scope, sel)
            if found:
                arts[name] = list(found)
                break
    return params, arts


def collect_iterations(
    node: Node,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A ParallelFor's outputs: each output gathered over its iterations, in order."""
    outputs = (node.component.get("dag") or {}).get("outputs") or {}
    params: dict[str, Any] = {}
    arts: dict[str, list[dict[str, Any]]] = {}
    per_iter = [dag_outputs(s) for s in node.iterations]
    for name in outputs.get("parameters") or {}:
        params[name] = [p[name] for p, _ in per_iter if name in p]
    for name in outputs.get("artifacts") or {}:
        arts[name] = [a for _, found in per_iter for a in found.get(name, [])]
    return params, arts


def scope_status(children: list[Node]) -> str:
    """A DAG's status from its tasks' (skipped tasks do not fail it)."""
    states = {c.status for c in children}
    for s in (FAILED, CANCELLED, NOT_RUN):
        if s in states:
            return s
    return SUCCEEDED


def iteration_name(node: Node, index: int) -> str:
    return f"{node.qname}[{index}]"


def dependencies_decision(node: Node) -> tuple[str | None, str | None]:
    """Whether a node whose upstream tasks all ended may start: ``(status, reason)`` or ``(None, None)``."""
    if node.strategy == "ALL_UPSTREAM_TASKS_COMPLETED":
        return None, None
    for d in sorted(node.deps):
        up = node.scope.children[d]
        if up.status in (FAILED, NOT_RUN, CANCELLED):
            return NOT_RUN, f"upstream task {up.qname} {up.status.lower().replace('_', ' ')}"
    for d in sorted(node.deps):
        up = node.scope.children[d]
        if up.status == SKIPPED:
            return SKIPPED, f"upstream task {up.qname} was skipped"
    return None, None
