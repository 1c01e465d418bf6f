"""DAG executions: the root, nested pipelines and condition groups, ``ParallelFor`` loops.

A scope is activated by making its nodes and posting a :class:`~.messages.Consider`
for each that waits on nothing; when its last node ends, :meth:`.loop.Orchestrator.finish`
posts :class:`~.messages.ScopeEnded`, which ends the owning DAG task, or ends one
iteration of a loop and starts the next within its ``parallelism``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench_dsl.engine import graph
from workbench_dsl.engine import params as ptypes
from workbench_dsl.engine.graph import Node, Scope
from workbench_dsl.engine.orchestrator import messages as m
from workbench_dsl.engine.orchestrator.states import BY_STORED, TaskState
from workbench_dsl.engine.spec import iterator_of

if TYPE_CHECKING:
    from workbench_dsl.engine.orchestrator.loop import Orchestrator

S = TaskState
_STUB_IMAGES = {"argostub/createpvc": "createpvc", "argostub/deletepvc": "deletepvc"}


def kind_of(o: Orchestrator, task: dict[str, Any], component: dict[str, Any]) -> str:
    """``loop``, ``dag``, ``importer``, ``stub`` (a kfp-kubernetes PVC step) or ``container``."""
    if iterator_of(task) is not None:
        return "loop"
    if "dag" in component:
        return "dag"
    executor = o.spec.executors.get(component.get("executorLabel") or "") or {}
    if "importer" in executor:
        return "importer"
    image = str((executor.get("container") or {}).get("image") or "")
    if image in _STUB_IMAGES:
        return "stub"
    return "container"


def stub_kind(image: str) -> str:
    return _STUB_IMAGES[image]


def activate(o: Orchestrator, scope: Scope) -> None:
    """Make a scope's nodes, record them as pending, and consider those that wait on nothing."""
    graph.make_nodes(scope, o.spec.components, lambda t, c: kind_of(o, t, c), o.seq, o.shapes)
    for node in scope.children.values():
        o.recorder.mirror(node)
    if not scope.children:
        o.post(m.ScopeEnded(scope))
        return
    for node in scope.children.values():
        if node.waiting == 0:
            o.post(m.Consider(node))


def _group_inputs(node: Node) -> dict[str, Any]:
    defs = (node.component.get("inputDefinitions") or {}).get("parameters") or {}
    out = dict(node.params)
    for name, d in defs.items():
        if name in out:
            try:
                out[name] = ptypes.coerce(out[name], d.get("parameterType"))
            except ptypes.ParameterTypeError:
                pass
        else:
            has, default = ptypes.default_of(d)
            if has:
                out[name] = default
    return out


def start_group(o: Orchestrator, node: Node) -> None:
    """Start a DAG task (activate its scope) or a loop (its first iterations)."""
    o.transition(node, S.RUNNING)
    params = _group_inputs(node)
    if node.kind == "dag":
        node.child = Scope(
            prefix=f"{node.qname}/",
            component=node.component,
            params=params,
            artifacts=dict(node.artifacts),
            owner=node,
            exempt=node.exempt,
            qname=node.qname,
        )
        activate(o, node.child)
        return
    node.params = params
    try:
        node.items = graph.loop_items(node)
    except graph.InputError as e:
        o.finish(node, S.FAILED, str(e), own=True)
        return
    if not node.items:
        _loop_done(o, node)
        return
    _start_iterations(o, node)


def _start_iterations(o: Orchestrator, node: Node) -> None:
    it = iterator_of(node.task) or {}
    item_input = it.get("itemInput", "")
    limit = graph.parallelism(node) or len(node.items)
    defs = (node.component.get("inputDefinitions") or {}).get("parameters") or {}
    while node.active_iterations < limit and node.next_iteration < len(node.items):
        if o.cancelled or (o.stopping and not node.exempt):
            break
        i = node.next_iteration
        node.next_iteration += 1
        item = node.items[i]
        params = dict(node.params)
        arts = dict(node.artifacts)
        if it.get("kind") == "artifact":
            arts[item_input] = [item]
        else:
            ptype = (defs.get(item_input) or {}).get("parameterType")
            try:
                params[item_input] = ptypes.coerce(item, ptype) if ptype else item
            except ptypes.ParameterTypeError:
                params[item_input] = item
        name = graph.iteration_name(node, i)
        scope = Scope(
            prefix=f"{name}/",
            component=node.component,
            params=params,
            artifacts=arts,
            owner=node,
            exempt=node.exempt,
            index=i,
            qname=name,
        )
        node.iterations.append(scope)
        node.active_iterations += 1
        o.recorder.group_row(
            name,
            "iteration",
            graph.RUNNING,
            next(o.seq),
            parent=node.qname,
            component=node.comp_name,
        )
        activate(o, scope)
    if node.active_iterations == 0 and node.state is S.RUNNING:
        _loop_done(o, node)


def scope_ended(o: Orchestrator, scope: Scope) -> None:
    """Every node of a scope ended: end its DAG task, or one iteration of its loop."""
    owner = scope.owner
    status = graph.scope_status(list(scope.children.values()))
    if owner is None:
        o.root_done = True
        o.root_status = status
        return
    if owner.kind == "dag":
        owner.out_params, owner.out_artifacts = graph.dag_outputs(scope)
        o.finish(owner, BY_STORED[status], _group_reason(status, scope))
        return
    o.recorder.group_row(
        scope.qname,
        "iteration",
        status,
        next(o.seq),
        parent=owner.qname,
        component=owner.comp_name,
    )
    owner.active_iterations -= 1
    if owner.state is S.RUNNING:
        _start_iterations(o, owner)


def _group_reason(status: str, scope: Scope) -> str | None:
    if status == graph.SUCCEEDED:
        return None
    bad = [c.qname for c in scope.children.values() if c.status == status]
    return f"{status.lower().replace('_', ' ')}: {', '.join(bad[:3])}"


def _loop_done(o: Orchestrator, node: Node) -> None:
    if node.state is not S.RUNNING:
        return
    started = node.iterations
    statuses = [graph.scope_status(list(s.children.values())) for s in started]
    never = len(node.items) - len(started)
    node.out_params, node.out_artifacts = graph.collect_iterations(node)
    status = graph.SUCCEEDED
    for s in (graph.FAILED, graph.CANCELLED, graph.NOT_RUN):
        if s in statuses:
            status = s
            break
    if status == graph.SUCCEEDED and never:
        status = graph.CANCELLED if o.cancelled else graph.NOT_RUN
    reason = (
        None
        if status == graph.SUCCEEDED
        else f"{statuses.count(status) or never} iteration(s) {status.lower()}"
    )
    o.finish(node, BY_STORED[status], reason)


def record_descendants(o: Orchestrator, node: Node, status: str, reason: str | None) -> None:
    """List the tasks inside a skipped DAG too, so every task of the pipeline shows up.

    Iterative (a stack of DAGs still to list), so nesting depth costs no stack frames.
    """
    todo: list[tuple[dict[str, Any], str, str]] = [(node.component, f"{node.qname}/", node.qname)]
    while todo:
        component, prefix, parent = todo.pop()
        for name, task in sorted(((component.get("dag") or {}).get("tasks") or {}).items()):
            comp_name = str((task.get("componentRef") or {}).get("name") or "")
            comp = o.spec.components.get(comp_name) or {}
            kind = kind_of(o, task, comp)
            qname = f"{prefix}{name}"
            o.recorder.group_row(
                qname,
                kind,
                status,
                next(o.seq),
                parent=parent,
                component=comp_name,
                executor=comp.get("executorLabel"),
                error=reason,
            )
            if kind == "dag":
                todo.append((comp, f"{qname}/", qname))
