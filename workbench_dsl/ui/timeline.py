"""A run's timeline: one row per task, one bar per attempt (retries side by side), cache hits
as diamonds, drawn against the seconds since the run started."""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from workbench_dsl.ui.format import duration
from workbench_dsl.ui.svg import STATUS_FILL, el, svg, truncate

LABEL_W, PLOT_W, ROW_H, AXIS_H = 210, 680, 20, 26
MAX_ROWS = 200


def nice_step(span: float, ticks: int = 6) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def busy_fraction(intervals: list[tuple[float, float]], start: float, end: float) -> float | None:
    """The share of ``start..end`` during which at least one attempt ran."""
    if end <= start:
        return None
    covered, cur_s, cur_e = 0.0, None, None
    for s, e in sorted((max(s, start), min(e, end)) for s, e in intervals if e > s):
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                covered += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        covered += cur_e - cur_s
    return min(1.0, covered / (end - start))


def draw(
    run: dict[str, Any], tasks: list[dict[str, Any]], attempts: list[dict[str, Any]]
) -> Markup | None:
    """The timeline SVG, or None when nothing has started yet."""
    now = time.time()
    start = run.get("started_at") or run.get("created_at")
    if start is None:
        return None
    by_task: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        if a.get("started_at") is not None:
            by_task.setdefault(a["task"], []).append(a)
    rows: list[tuple[float, str, dict[str, Any]]] = []
    for t in tasks:
        if t["task"] in by_task:
            first = min(a["started_at"] for a in by_task[t["task"]])
        elif (t.get("cached") or t.get("reused")) and t.get("started_at"):
            first = t["started_at"]
        else:
            continue
        rows.append((first, t["task"], t))
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    rows = rows[:MAX_ROWS]
    ends = [start]
    for a in attempts:
        ends.append(a.get("finished_at") or (now if a.get("status") == "RUNNING" else start))
    end = max(run.get("finished_at") or (now if run.get("status") == "RUNNING" else 0), *ends)
    span = max(end - start, 0.5)
    step = nice_step(span)
    scale = PLOT_W / (math.ceil(span / step) * step)

    def x(t: float) -> float:
        return LABEL_W + (t - start) * scale

    height = AXIS_H + len(rows) * ROW_H + 6
    parts: list[Any] = []
    tick = 0.0
    while tick <= span + step / 2:
        tx = LABEL_W + tick * scale
        parts.append(
            el("line", {"x1": tx, "x2": tx, "y1": AXIS_H - 4, "y2": height, "class_": "grid"})
        )
        parts.append(
            el(
                "text",
                {"x": tx, "y": AXIS_H - 9, "class_": "axis", "text_anchor": "middle"},
                duration(tick) if tick else "0",
            )
        )
        tick += step
    for i, (_, name, t) in enumerate(rows):
        y = AXIS_H + i * ROW_H
        href = f"?task={quote(name, safe='')}#task"
        if i % 2:
            parts.append(
                el(
                    "rect",
                    {
                        "x": 0,
                        "y": y,
                        "width": LABEL_W + PLOT_W,
                        "height": ROW_H,
                        "class_": "stripe",
                    },
                )
            )
        parts.append(
            el(
                "a",
                {"href": href},
                el("text", {"x": 4, "y": y + 14, "class_": "tl-label"}, truncate(name, 30)),
            )
        )
        tries = by_task.get(name, [])
        if not tries:
            cx, cy = x(t["started_at"]), y + ROW_H / 2
            look = "CACHED" if t.get("cached") else "REUSED"
            parts.append(
                el(
                    "path",
                    {
                        "d": f"M {cx:.1f} {cy - 6:.1f} l 6 6 l -6 6 l -6 -6 z",
                        "fill": STATUS_FILL[look],
                        "class_": "tl-cached",
                    },
                    el("title", {}, f"{name}: {'cached' if t.get('cached') else 'done earlier'}"),
                )
            )
            continue
        for a in tries:
            a_end = a.get("finished_at") or (
                now if a.get("status") == "RUNNING" else a["started_at"]
            )
            w = max(2.0, (a_end - a["started_at"]) * scale)
            status = str(a.get("status") or "PENDING")
            label = (
                f"{name} attempt {a['attempt']}: {status.lower()}, "
                f"{duration(a_end - a['started_at'])}"
                + (f" ({a['error']})" if a.get("error") else "")
            )
            parts.append(
                el(
                    "rect",
                    {
                        "x": x(a["started_at"]),
                        "y": y + 4,
                        "width": w,
                        "height": ROW_H - 8,
                        "rx": 2,
                        "fill": STATUS_FILL.get(status, STATUS_FILL["FAILED"]),
                        "class_": "tl-bar" + (" running" if status == "RUNNING" else ""),
                    },
                    el("title", {}, label),
                )
            )
            if len(tries) > 1:
                parts.append(
                    el(
                        "text",
                        {"x": x(a["started_at"]) + 3, "y": y + 13, "class_": "tl-try"},
                        f"#{a['attempt']}",
                    )
                )
    return svg(LABEL_W + PLOT_W + 10, height, *parts, label="task timeline", class_="timeline")
