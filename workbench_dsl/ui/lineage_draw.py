"""The lineage around one thing, drawn: datasets, model versions and endpoints linked by the
task runs that read and wrote them (from ``workbench lineage``'s report), left to right."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from workbench_dsl.ui.layout import edge_paths, place
from workbench_dsl.ui.svg import el, svg, truncate

NODE_W, NODE_H = 200, 54
KIND_FILL = {
    "task": "#e8f0fe",
    "pipeline": "#dbe4f3",
    "dataset": "#eaf6ee",
    "model_version": "#f1e9fd",
    "endpoint": "#fdf0e1",
}
KIND_WORD = {
    "task": "task run",
    "pipeline": "pipeline run",
    "dataset": "dataset",
    "model_version": "model version",
    "endpoint": "endpoint",
}


def target_of(node: dict[str, Any]) -> str | None:
    """The ``workbench lineage`` target that names ``node`` (None for a task run)."""
    kind = node.get("kind")
    if kind == "model_version":
        return f"{node['name']}/{node.get('version')}"
    if kind == "endpoint":
        return str(node["name"])
    if kind == "pipeline" and node.get("engine_run_id"):
        return f"run:{node['engine_run_id']}"
    if kind == "dataset":
        return f"{node['name']}@{node['version']}" if node.get("version") else str(node["name"])
    return None


def link_of(node: dict[str, Any]) -> str | None:
    """Where clicking ``node`` goes: its own lineage, or a task run's page."""
    if node.get("kind") == "task" and node.get("engine_run_id"):
        q = urlencode({"task": node.get("task") or ""})
        return f"/runs/{quote(str(node['engine_run_id']))}?{q}#task"
    target = target_of(node)
    return f"/lineage?{urlencode({'target': target})}" if target else None


def _lines(node: dict[str, Any]) -> tuple[str, str]:
    """A node's name and one line of detail, short enough for its box."""
    kind, name = str(node.get("kind")), str(node.get("name") or "")
    version = str(node.get("version") or "")
    if kind in ("task", "pipeline"):
        own = name.split(".", 1)[1] if kind == "task" and "." in name else name
        bits = [f"run {str(node.get('engine_run_id') or '')[:12]}", str(node.get("status") or "")]
        if node.get("cached"):
            bits.append("cached")
        return own, " · ".join(b for b in bits if b)
    if kind == "model_version":
        return f"{name.removeprefix('models:/')} v{version}", "model version"
    if kind == "endpoint":
        return name.removeprefix("endpoint:"), version
    short = "/".join(name.split("/")[-2:])
    detail = [version[:19] if version.startswith("sha256:") else version]
    if node.get("rows") is not None:
        detail.append(f"{node['rows']} rows")
    return short, " · ".join(d for d in detail if d)


def draw(report: dict[str, Any]) -> Markup:
    """The report's graph as SVG; the asked-about node is outlined."""
    nodes: dict[str, Any] = report["nodes"]
    edges = [(a, b) for a, b in report["edges"] if a in nodes and b in nodes]
    dashed: list[tuple[str, str]] = []
    if report.get("tasks") is not None:
        dashed = [(report["target"], t["id"]) for t in report["tasks"] if t["id"] in nodes]
    ids = sorted(nodes, key=lambda i: (nodes[i].get("time") or "", i))
    boxes, width, height = place(ids, edges + dashed, width=NODE_W, height=NODE_H, gap_x=48)
    parts: list[Any] = edge_paths(
        boxes, edges + dashed, width=NODE_W, height=NODE_H, marker="lin-arrow", dashed=set(dashed)
    )
    for nid in ids:
        n, b = nodes[nid], boxes[nid]
        kind = str(n.get("kind"))
        label = str(n.get("label") or n.get("name") or nid)
        title, detail = _lines(n)
        inner = [
            el("title", {}, f"{KIND_WORD.get(kind, kind)}: {label}"),
            el(
                "rect",
                {
                    "x": b.x,
                    "y": b.y,
                    "width": NODE_W,
                    "height": NODE_H,
                    "rx": 18 if kind == "dataset" else 4,
                    "fill": KIND_FILL.get(kind, "#f3f4f6"),
                    "class_": "lnode" + (" target" if nid == report["target"] else ""),
                },
            ),
            el(
                "text",
                {"x": b.x + 10, "y": b.y + 15, "class_": "node-kind"},
                KIND_WORD.get(kind, kind),
            ),
            el(
                "text",
                {"x": b.x + 10, "y": b.y + 31, "class_": "node-title dark"},
                truncate(title, 27),
            ),
            el(
                "text",
                {"x": b.x + 10, "y": b.y + 46, "class_": "node-sub dark"},
                truncate(detail, 32),
            ),
        ]
        href = link_of(n)
        parts.append(el("a", {"href": href}, *inner) if href else el("g", {}, *inner))
    return svg(width, height, *parts, label="lineage graph", class_="lineage")
