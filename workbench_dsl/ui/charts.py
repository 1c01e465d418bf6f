"""Small charts drawn as SVG on the server: lines and points on x/y axes, bars, sparklines.

Enough for the dashboard's needs (a sweep's objective per trial with its best so
far, a parameter against the objective, metrics, request rates) without a
JavaScript charting library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from workbench_dsl.ui.format import number
from workbench_dsl.ui.svg import PALETTE, el, svg, truncate
from workbench_dsl.ui.timeline import nice_step

W, H = 460, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 14, 40


@dataclass
class Series:
    """A named set of points drawn as ``points``, a ``line`` or a ``step`` line."""

    name: str
    points: list[tuple[float, float]]
    style: str = "points"
    color: str = PALETTE[0]
    tips: list[str] = field(default_factory=list)  # a tooltip per point


class _Axis:
    def __init__(
        self, values: list[float], lo_px: float, hi_px: float, log: bool, pad: float
    ) -> None:
        self.log = log and all(v > 0 for v in values) and bool(values)
        vals = [math.log10(v) for v in values] if self.log else values
        lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
        if hi == lo:
            lo, hi = lo - (abs(lo) * 0.1 or 1), hi + (abs(hi) * 0.1 or 1)
        span = hi - lo
        self.lo, self.hi = lo - span * pad, hi + span * pad
        self.lo_px, self.hi_px = lo_px, hi_px

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.lo_px + (t - self.lo) / (self.hi - self.lo) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            first, last = math.ceil(self.lo), math.floor(self.hi)
            return [(10.0**e, f"1e{e}") for e in range(first, last + 1)] or [
                (10**self.lo, number(10**self.lo))
            ]
        step = nice_step(self.hi - self.lo, 5)
        t = math.ceil(self.lo / step) * step
        out = []
        while t <= self.hi + step * 1e-9:
            out.append((t, number(round(t, 10))))
            t += step
        return out


def xy_chart(
    series: list[Series],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    categories: list[str] | None = None,
    width: int = W,
    height: int = H,
) -> Markup:
    """Points and lines on numeric axes; ``categories`` makes x the index into them."""
    top = TOP + (15 * len(series) if len(series) > 1 else 0)  # room for the legend
    xs = [p[0] for s in series for p in s.points]
    ys = [p[1] for s in series for p in s.points]
    if categories is not None:
        xs = [-0.5, len(categories) - 0.5]
    xa = _Axis(xs, LEFT, width - RIGHT, log_x and categories is None, 0.0 if categories else 0.04)
    ya = _Axis(ys, height - BOTTOM, top, False, 0.06)
    parts: list[Any] = []
    for v, label in ya.ticks():
        y = ya(v)
        parts.append(
            el("line", {"x1": LEFT, "x2": width - RIGHT, "y1": y, "y2": y, "class_": "grid"})
        )
        parts.append(
            el("text", {"x": LEFT - 6, "y": y + 4, "class_": "axis", "text_anchor": "end"}, label)
        )
    xticks = (
        [(float(i), truncate(c, 12)) for i, c in enumerate(categories)]
        if categories is not None
        else xa.ticks()
    )
    for v, label in xticks:
        x = xa(v)
        parts.append(
            el("line", {"x1": x, "x2": x, "y1": top, "y2": height - BOTTOM, "class_": "grid"})
        )
        parts.append(
            el(
                "text",
                {"x": x, "y": height - BOTTOM + 15, "class_": "axis", "text_anchor": "middle"},
                label,
            )
        )
    parts.append(
        el(
            "text",
            {
                "x": (LEFT + width - RIGHT) / 2,
                "y": height - 6,
                "class_": "axis-label",
                "text_anchor": "middle",
            },
            x_label,
        )
    )
    parts.append(
        el(
            "text",
            {
                "x": 12,
                "y": (top + height - BOTTOM) / 2,
                "class_": "axis-label",
                "text_anchor": "middle",
                "transform": f"rotate(-90 12 {(top + height - BOTTOM) / 2:.1f})",
            },
            y_label,
        )
    )
    for s in series:
        pts = [(xa(x), ya(y)) for x, y in s.points]
        if s.style in ("line", "step") and len(pts) > 1:
            d = f"M {pts[0][0]:.1f} {pts[0][1]:.1f}"
            for qx, qy in pts[1:]:
                d += f" H {qx:.1f} V {qy:.1f}" if s.style == "step" else f" L {qx:.1f} {qy:.1f}"
            parts.append(el("path", {"d": d, "class_": "series-line", "stroke": s.color}))
        if s.style == "points":
            for i, (px, py) in enumerate(pts):
                tip = s.tips[i] if i < len(s.tips) else f"{s.name}: {number(s.points[i][1])}"
                parts.append(
                    el(
                        "circle",
                        {"cx": px, "cy": py, "r": 3.5, "fill": s.color, "class_": "point"},
                        el("title", {}, tip),
                    )
                )
    if len(series) > 1:
        lx = LEFT
        for i, s in enumerate(series):
            parts.append(
                el(
                    "rect",
                    {"x": lx, "y": 4 + i * 15, "width": 10, "height": 10, "fill": s.color},
                )
            )
            parts.append(el("text", {"x": lx + 14, "y": 13 + i * 15, "class_": "legend"}, s.name))
    return svg(width, height, *parts, label=f"{y_label} against {x_label}")


def bars(
    items: list[tuple[str, float]],
    *,
    width: int = W,
    unit: str = "",
    fmt: Callable[[float], str] = number,
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, scaled to the largest magnitude."""
    row, label_w = 22, 150
    top = max((abs(v) for _, v in items), default=1.0) or 1.0
    plot = width - label_w - 70
    parts: list[Any] = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = max(1.0, abs(value) / top * plot)
        parts.append(
            el(
                "text",
                {"x": label_w - 6, "y": y + 14, "class_": "axis", "text_anchor": "end"},
                truncate(label, 22),
            )
        )
        parts.append(
            el(
                "rect",
                {
                    "x": label_w,
                    "y": y + 3,
                    "width": w,
                    "height": row - 8,
                    "rx": 2,
                    "fill": PALETTE[0] if value >= 0 else PALETTE[3],
                },
                el("title", {}, f"{label}: {fmt(value)}{unit}"),
            )
        )
        parts.append(
            el(
                "text",
                {"x": label_w + w + 5, "y": y + 14, "class_": "axis"},
                f"{fmt(value)}{unit}",
            )
        )
    return svg(width, 8 + len(items) * row, *parts, label="bar chart")


def sparkline(
    values: list[float], *, width: int = 160, height: int = 32, title: str = ""
) -> Markup:
    """A tiny line of ``values`` (request rate over the last minutes)."""
    if len(values) < 2:
        return Markup("")
    top = max(values) or 1.0
    step = width / (len(values) - 1)
    pts = " ".join(
        f"{i * step:.1f},{height - 2 - v / top * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return svg(
        width,
        height,
        el("title", {}, title),
        el("polyline", {"points": pts, "class_": "spark"}),
        label=title,
        class_="sparkline",
    )


def split_bar(
    stable: str | None, canary: str | None, canary_percent: int, width: int = 260
) -> Markup:
    """The traffic split of an endpoint: the stable revision's share, then the canary's."""
    share = max(0, min(100, int(canary_percent))) if canary else 0
    cut = width * (100 - share) / 100
    parts: list[Any] = [
        el(
            "rect",
            {"x": 0, "y": 0, "width": cut, "height": 14, "fill": PALETTE[2]},
            el("title", {}, f"{stable or 'nothing'}: {100 - share}%"),
        ),
    ]
    if share:
        parts.append(
            el(
                "rect",
                {"x": cut, "y": 0, "width": width - cut, "height": 14, "fill": PALETTE[1]},
                el("title", {}, f"canary {canary}: {share}%"),
            )
        )
    return svg(width, 14, *parts, label=f"traffic split {100 - share}/{share}", class_="split")
