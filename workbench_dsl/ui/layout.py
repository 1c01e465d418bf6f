"""Layered drawing of a directed graph (a run's DAG, a lineage graph), left to right.

Sugiyama's scheme, kept small: each node's column is its longest path from a
source; within a column nodes are ordered by the mean position of their
neighbours (a few sweeps each way), which untangles the usual pipeline shapes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from markupsafe import Markup

from workbench_dsl.ui.svg import arrow_marker, el


@dataclass(frozen=True)
class Box:
    """Where a node was put."""

    x: float
    y: float
    column: int
    row: int


def columns(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the length of the longest path reaching it (cycles broken)."""
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    known = set(nodes)
    for a, b in edges:
        if a in known and b in known and a != b:
            preds[b].append(a)
            succs[a].append(b)
    indegree = {n: len(preds[n]) for n in nodes}
    col = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if indegree[n] == 0]
    done: set[str] = set()
    while ready:
        n = ready.pop(0)
        done.add(n)
        for s in succs[n]:
            col[s] = max(col[s], col[n] + 1)
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    # A cycle (never in a KFP DAG; possible in hand-made lineage) goes after everything.
    last = max(col.values(), default=0)
    for n in nodes:
        if n not in done:
            col[n] = last + 1
    return col


def place(
    nodes: list[str],
    edges: list[tuple[str, str]],
    *,
    width: float,
    height: float,
    gap_x: float = 56,
    gap_y: float = 18,
    pad: float = 12,
) -> tuple[dict[str, Box], float, float]:
    """Positions of ``nodes`` (``width`` x ``height`` boxes) and the drawing's size."""
    col = columns(nodes, edges)
    by_col: dict[int, list[str]] = defaultdict(list)
    for n in nodes:
        by_col[col[n]].append(n)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        if a in col and b in col:
            neighbours[a].append(b)
            neighbours[b].append(a)
    order = {n: i for c in by_col.values() for i, n in enumerate(c)}
    ncols = max(by_col, default=-1) + 1
    for sweep in range(4):
        seq = range(1, ncols) if sweep % 2 == 0 else range(ncols - 2, -1, -1)
        for c in seq:
            side = c - 1 if sweep % 2 == 0 else c + 1

            def key(n: str, side: int = side) -> tuple[float, int]:
                near = [order[m] for m in neighbours[n] if col[m] == side]
                return (sum(near) / len(near) if near else order[n], order[n])

            by_col[c].sort(key=key)
            for i, n in enumerate(by_col[c]):
                order[n] = i
    tallest = max((len(v) for v in by_col.values()), default=0)
    total_h = pad * 2 + tallest * height + max(0, tallest - 1) * gap_y
    boxes: dict[str, Box] = {}
    for c, members in by_col.items():
        span = len(members) * height + max(0, len(members) - 1) * gap_y
        top = (total_h - span) / 2
        for i, n in enumerate(members):
            boxes[n] = Box(pad + c * (width + gap_x), top + i * (height + gap_y), c, i)
    total_w = pad * 2 + ncols * width + max(0, ncols - 1) * gap_x
    return boxes, max(total_w, width + 2 * pad), max(total_h, height + 2 * pad)


def edge_paths(
    boxes: dict[str, Box],
    edges: list[tuple[str, str]],
    *,
    width: float,
    height: float,
    marker: str,
    dashed: set[tuple[str, str]] | None = None,
) -> list[Markup]:
    """Curves from the right side of each source box to the left side of its target."""
    out = [el("defs", {}, arrow_marker(marker))]
    for a, b in edges:
        if a not in boxes or b not in boxes:
            continue
        s, t = boxes[a], boxes[b]
        x1, y1 = s.x + width, s.y + height / 2
        x2, y2 = t.x, t.y + height / 2
        if t.column <= s.column:  # a back edge: loop around below
            x2, y2 = t.x + width / 2, t.y + height
        bend = max(24.0, abs(x2 - x1) / 2)
        out.append(
            el(
                "path",
                {
                    "d": f"M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, "
                    f"{x2 - bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}",
                    "class_": "edge dashed" if dashed and (a, b) in dashed else "edge",
                    "marker_end": f"url(#{marker})",
                },
            )
        )
    return out
