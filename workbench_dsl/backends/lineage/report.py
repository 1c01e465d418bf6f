"""``workbench lineage TARGET`` as data, text and Graphviz: the chain upstream and downstream."""

from __future__ import annotations

from typing import Any

from workbench_dsl.backends.lineage.graph import LineageGraph, Node, tree_ids


def lineage_report(graph: LineageGraph, target: str, depth: int = 50) -> dict[str, Any]:
    """Everything upstream and downstream of ``target`` (see :meth:`LineageGraph.resolve`)."""
    node = graph.resolve(target)
    report: dict[str, Any] = {"target": node.id}
    if node.kind == "pipeline":
        tasks = graph.run_tasks(node.id)
        wrote = {d for t in tasks for d in graph.down.get(t, ())}
        read = {d for t in tasks for d in graph.up.get(t, ())}
        report["tasks"] = [
            {
                "id": t,
                "inputs": sorted(graph.up.get(t, ())),
                "outputs": sorted(graph.down.get(t, ())),
            }
            for t in tasks
        ]
        up = [graph.walk(d, "up", depth) for d in sorted(read - wrote)]
        down = [graph.walk(d, "down", depth) for d in sorted(wrote - read)]
        # A dataset the run read that nothing upstream produced is a leaf: keep it only
        # if it has a history.
        report["upstream"] = [t for t in up if t["children"]]
        report["downstream"] = [t for t in down if t["children"]]
        ids = {node.id, *tasks, *read, *wrote}
    else:
        up_tree = graph.walk(node.id, "up", depth)
        down_tree = graph.walk(node.id, "down", depth)
        report["upstream"] = up_tree["children"]
        report["downstream"] = down_tree["children"]
        ids = {node.id}
        if up_tree.get("also"):
            report["also_produced_by"] = up_tree["also"]
            ids |= set(up_tree["also"])
        if down_tree.get("also"):
            report["also_read_by"] = down_tree["also"]
            ids |= set(down_tree["also"])
    for tree in [*report["upstream"], *report["downstream"]]:
        ids |= tree_ids(tree)
    report["nodes"] = {i: graph.nodes[i].to_json() for i in sorted(ids) if i in graph.nodes}
    report["edges"] = sorted([a, b] for a in ids for b in graph.down.get(a, ()) if b in ids)
    return report


def overview(graph: LineageGraph, runs: int = 10) -> dict[str, list[Node]]:
    """What lineage knows about: the latest version of each model version, endpoint and
    dataset, and the ``runs`` most recent pipeline runs (``workbench lineage`` with no
    target, and the dashboard's lineage page)."""
    latest: dict[tuple[str, str], Node] = {}
    for n in sorted(graph.nodes.values(), key=lambda n: n.time):
        if n.kind in ("model_version", "endpoint", "dataset"):
            latest[(n.kind, n.name)] = n
    recent = sorted((n for n in graph.nodes.values() if n.kind == "pipeline"), key=lambda n: n.time)
    return {
        "model_versions": [n for (k, _), n in latest.items() if k == "model_version"],
        "endpoints": [n for (k, _), n in latest.items() if k == "endpoint"],
        "datasets": [n for (k, _), n in latest.items() if k == "dataset"],
        "runs": recent[-runs:] if runs else [],
    }


_KIND_WORDS = {
    "model_version": "model version",
    "endpoint": "endpoint",
    "dataset": "dataset",
    "task": "task run",
    "pipeline": "pipeline run",
}


def to_text(report: dict[str, Any]) -> str:
    """The report as an indented tree a person reads top to bottom."""
    nodes: dict[str, Any] = report["nodes"]

    def label(nid: str) -> str:
        return str(nodes.get(nid, {}).get("label", nid))

    target = nodes[report["target"]]
    lines = [f"{target['label']}  [{_KIND_WORDS.get(target['kind'], target['kind'])}]"]
    if report.get("tasks") is not None:
        lines.append("tasks")
        for t in report["tasks"]:
            lines.append(f"  {label(t['id'])}")
            for i in t["inputs"]:
                lines.append(f"    <- {label(i)}")
            for o in t["outputs"]:
                lines.append(f"    -> {label(o)}")
    arrow = {"upstream": "<-", "downstream": "->"}
    for direction in ("upstream", "downstream"):
        trees = report.get(direction) or []
        lines.append(direction + ("" if trees else ": nothing recorded"))
        for tree in trees:
            _tree_lines(tree, nodes, "  ", arrow[direction], lines)
    for key, words in (("also_produced_by", "also produced by"), ("also_read_by", "also read by")):
        others = report.get(key) or []
        if others:
            shown = ", ".join(label(i) for i in others[:3])
            more = f" and {len(others) - 3} more" if len(others) > 3 else ""
            lines.append(f"{words}: {shown}{more}")
    return "\n".join(lines)


def _tree_lines(
    tree: dict[str, Any], nodes: dict[str, Any], indent: str, arrow: str, lines: list[str]
) -> None:
    text = str(nodes.get(tree["id"], {}).get("label", tree["id"]))
    if tree.get("seen"):
        text += " (see above)"
    if tree.get("also"):
        word = "produced" if arrow == "<-" else "read"
        text += f" (also {word} by {len(tree['also'])} other run(s))"
    lines.append(f"{indent}{arrow} {text}")
    for child in tree.get("children", []):
        _tree_lines(child, nodes, indent + "   ", arrow, lines)


def to_dot(report: dict[str, Any]) -> str:
    """The report's graph in Graphviz DOT (``workbench lineage X --dot | dot -Tsvg``)."""
    shapes = {
        "task": "box",
        "pipeline": "box3d",
        "dataset": "ellipse",
        "model_version": "component",
        "endpoint": "house",
    }
    ids = {nid: f"n{i}" for i, nid in enumerate(sorted(report["nodes"]))}
    out = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for nid, node in sorted(report["nodes"].items()):
        attrs = [
            f'label="{_dot_escape(node["label"])}"',
            f"shape={shapes.get(node['kind'], 'ellipse')}",
        ]
        if nid == report["target"]:
            attrs.append('style="bold,filled", fillcolor="lightyellow"')
        out.append(f"  {ids[nid]} [{', '.join(attrs)}];")
    for a, b in report["edges"]:
        out.append(f"  {ids[a]} -> {ids[b]};")
    if report.get("tasks") is not None:
        for t in report["tasks"]:
            out.append(
                f"  {ids[report['target']]} -> {ids[t['id']]} [style=dashed, arrowhead=none];"
            )
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def describe(node: Node) -> str:
    return f"{node.label()} [{_KIND_WORDS.get(node.kind, node.kind)}]"
