"""A run's DAG as the dashboard draws it: the compiled spec's structure, the run's task states.

Nodes are the tasks of every DAG scope of the run (nested pipelines, conditions,
``ParallelFor`` iterations: their groups are nodes too, tied to their first tasks
by dashed lines). Tasks the run has not reached yet are drawn from the spec as
PENDING, so the whole graph shows from the first second. An edge into a task
that waits on a group comes from the group's last tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from workbench_dsl.ui.format import duration
from workbench_dsl.ui.layout import edge_paths, place
from workbench_dsl.ui.svg import STATUS_FILL, STATUS_TEXT, el, svg, truncate

NODE_W, NODE_H = 184, 42
#: Iterations of one loop drawn before the rest are summed up in one node.
MAX_ITERATIONS = 12
MAX_NODES = 400


@dataclass
class DagNode:
    """One box: a task, a group (DAG, condition, loop) or one loop iteration."""

    id: str
    label: str
    kind: str
    status: str
    executor: bool
    row: dict[str, Any] | None = None
    children: list[str] = field(default_factory=list)
    succ: set[str] = field(default_factory=set)  # siblings that wait for it

    @property
    def look(self) -> str:
        """The color key: the status, or CACHED/REUSED/WAITING where that says more."""
        r = self.row or {}
        if self.status == "SUCCEEDED" and r.get("cached"):
            return "CACHED"
        if self.status == "SUCCEEDED" and r.get("reused"):
            return "REUSED"
        if self.status == "RUNNING" and str(r.get("status_line") or "").startswith(
            "waiting for approval"
        ):
            return "WAITING"
        return self.status if self.status in STATUS_FILL else "PENDING"


@dataclass
class RunDag:
    nodes: dict[str, DagNode]
    edges: list[tuple[str, str]]
    contains: list[tuple[str, str]]
    truncated: bool = False


def build(spec: Any, rows: dict[str, dict[str, Any]]) -> RunDag:
    """The DAG of a run from its parsed PipelineSpec (``None`` if unreadable) and task rows."""
    from workbench_dsl.engine.spec import component_ref, is_dag, iterator_of, upstream_tasks

    dag = RunDag({}, [], [])
    if spec is None:
        for name, r in rows.items():
            if r["kind"] in ("container", "importer", "stub"):
                dag.nodes[name] = _node(name, name, r["kind"], True, r)
        return dag

    # Each loop's iterations, indexed once (not a scan of every row per loop).
    iterations_of: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        if r["kind"] == "iteration" and r.get("parent"):
            iterations_of.setdefault(str(r["parent"]), []).append(r)

    def add(node: DagNode, parent: str | None) -> None:
        dag.nodes[node.id] = node
        if parent is not None:
            dag.nodes[parent].children.append(node.id)

    def scope(prefix: str, component: dict[str, Any], parent: str | None) -> None:
        tasks = (component.get("dag") or {}).get("tasks") or {}
        for own, t in tasks.items():
            if len(dag.nodes) >= MAX_NODES:
                dag.truncated = True
                return
            q = prefix + own
            child = spec.components.get(component_ref(t)) or {}
            group = is_dag(child)
            kind = ("loop" if iterator_of(t) else "dag") if group else "container"
            add(_node(q, own, kind, not group, rows.get(q)), parent)
            ups = [prefix + u for u in sorted(upstream_tasks(t)) if u in tasks]
            for u in ups:
                dag.edges.append((u, q))
            if parent is not None and not ups:
                dag.contains.append((parent, q))
            if not group:
                continue
            if kind == "dag":
                scope(q + "/", child, q)
                continue
            iterations = sorted(
                iterations_of.get(q, []),
                key=lambda r: (r.get("seq") or 0, r["task"]),
            )
            for r in iterations[:MAX_ITERATIONS]:
                it = r["task"]
                add(_node(it, it[len(q) :] or it, "iteration", False, r), q)
                dag.contains.append((q, it))
                scope(it + "/", child, it)
            if len(iterations) > MAX_ITERATIONS:
                more = f"{q}/…"
                rest = len(iterations) - MAX_ITERATIONS
                add(DagNode(more, f"+{rest} more iterations", "more", "PENDING", False), q)
                dag.contains.append((q, more))

    scope("", spec.root, None)
    if dag.truncated:  # an edge may name a task the cut left out (inc-10 sorts before inc-9)
        dag.edges = [(a, b) for a, b in dag.edges if a in dag.nodes and b in dag.nodes]
    # Siblings that wait for a group wait for its last tasks: draw the edges from those.
    for a, b in dag.edges:
        dag.nodes[a].succ.add(b)
    flat: list[tuple[str, str]] = []
    for a, b in dag.edges:
        sinks = _sinks(dag, a)
        flat.extend((s, b) for s in sinks) if sinks else flat.append((a, b))
    dag.edges = flat
    return dag


def _node(q: str, label: str, kind: str, executor: bool, row: Any) -> DagNode:
    r = dict(row) if row is not None else None
    status = str(r["status"]) if r else "PENDING"
    return DagNode(q, label, kind, status, executor, r)


def _sinks(dag: RunDag, q: str) -> list[str]:
    node = dag.nodes[q]
    if not node.children:
        return []
    out: list[str] = []
    for c in node.children:
        if dag.nodes[c].succ:
            continue
        out.extend(_sinks(dag, c) or [c])
    return out


def draw(dag: RunDag, run_id: str, selected: str | None = None) -> Markup:
    """The DAG as SVG: one box per node colored by status; a task box links to its panel."""
    ids = list(dag.nodes)
    all_edges = dag.edges + dag.contains
    boxes, width, height = place(ids, all_edges, width=NODE_W, height=NODE_H)
    parts: list[Any] = edge_paths(
        boxes,
        all_edges,
        width=NODE_W,
        height=NODE_H,
        marker="dag-arrow",
        dashed=set(dag.contains),
    )
    for nid, node in dag.nodes.items():
        b = boxes[nid]
        look = node.look
        r = node.row or {}
        sub = _subtitle(node)
        title = f"{nid}\n{look.lower().replace('_', ' ')}" + (
            f"\n{r['status_line']}" if r.get("status_line") else ""
        )
        shape = el(
            "rect",
            {
                "x": b.x,
                "y": b.y,
                "width": NODE_W,
                "height": NODE_H,
                "rx": 4 if node.executor else 12,
                "fill": STATUS_FILL[look],
                "class_": "node"
                + ("" if node.executor else " group")
                + (" selected" if nid == selected else "")
                + (" running" if look == "RUNNING" else ""),
            },
        )
        text = el(
            "text",
            {"x": b.x + 10, "y": b.y + 17, "fill": STATUS_TEXT[look], "class_": "node-title"},
            truncate(node.label, 26),
        )
        subtext = el(
            "text",
            {"x": b.x + 10, "y": b.y + 33, "fill": STATUS_TEXT[look], "class_": "node-sub"},
            truncate(sub, 30),
        )
        inner = [el("title", {}, title), shape, text, subtext]
        if node.executor:
            href = f"/runs/{quote(run_id)}?task={quote(nid, safe='')}#task"
            parts.append(el("a", {"href": href, "class_": "node-link"}, *inner))
        else:
            parts.append(el("g", {}, *inner))
    return svg(width, height, *parts, label="pipeline graph", class_="dag")


def _subtitle(node: DagNode) -> str:
    r = node.row or {}
    if node.kind == "more":
        return "not drawn"
    look = node.look
    words = {
        "CACHED": "cached",
        "REUSED": "done earlier",
        "WAITING": "waiting for approval",
        "NOT_RUN": "not run",
    }
    bits = [words.get(look, look.lower())]
    if node.kind in ("dag", "loop", "iteration"):
        bits.insert(0, {"dag": "group", "loop": "loop", "iteration": "iteration"}[node.kind])
    if node.executor and r.get("duration_s") and look not in ("CACHED", "REUSED"):
        bits.append(duration(float(r["duration_s"])))
    if int(r.get("attempts") or 0) > 1:
        bits.append(f"{r['attempts']} attempts")
    return " · ".join(bits)
