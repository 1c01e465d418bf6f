"""SVG drawn on the server: an element builder that escapes every name and value it is given.

The dashboard's DAGs, timelines and charts are built with :func:`el`, so a task,
pipeline or artifact named ``<script>`` ends up as text inside the drawing.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

#: Fill colors by task/run status (the legend in ``ui.css`` uses the same ones).
STATUS_FILL = {
    "SUCCEEDED": "#2f9e62",
    "CACHED": "#7fc8a0",
    "REUSED": "#9fd4b6",
    "RUNNING": "#3b82f6",
    "WAITING": "#8b5cf6",
    "FAILED": "#d64545",
    "TIMED_OUT": "#d64545",
    "LOST": "#b45353",
    "CANCELLED": "#e39b2f",
    "INTERRUPTED": "#e39b2f",
    "SKIPPED": "#d9dde3",
    "NOT_RUN": "#a3aab5",
    "PENDING": "#eef0f3",
}
#: Text on each fill (dark on light fills, white on dark ones).
STATUS_TEXT = {k: "#ffffff" for k in STATUS_FILL} | {
    "CACHED": "#0f3d25",
    "REUSED": "#0f3d25",
    "SKIPPED": "#4b5563",
    "PENDING": "#4b5563",
}
PALETTE = ("#3b82f6", "#e39b2f", "#2f9e62", "#d64545", "#8b5cf6", "#0ea5a4", "#db2777")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v) < 1e7 else f"{v:.0f}"
    return str(v)


def el(tag: str, attrs: dict[str, Any] | None = None, *children: Any) -> Markup:
    """One SVG element: attribute names with ``_`` become ``-`` (``class_`` is ``class``),
    None/False attributes are left out, plain-string children are escaped text."""
    parts = [f"<{tag}"]
    for key, v in (attrs or {}).items():
        if v is None or v is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f' {name}="{escape(_value(v))}"')
    if not children:
        return Markup("".join(parts) + "/>")
    inner = "".join(
        str(c) if isinstance(c, Markup) else str(escape(_value(c)))
        for c in children
        if c is not None
    )
    return Markup("".join(parts) + ">" + inner + f"</{tag}>")


def group(*children: Any, **attrs: Any) -> Markup:
    """A ``<g>`` around ``children`` (left out when there are none)."""
    kids = [c for c in children if c is not None]
    return el("g", attrs, *kids) if kids else Markup("")


def svg(width: float, height: float, *children: Any, label: str = "", class_: str = "") -> Markup:
    """A whole ``<svg>`` of ``width`` x ``height`` pixels, scaled down to fit its column."""
    return el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {_value(width)} {_value(height)}",
            "width": width,
            "height": height,
            "role": "img",
            "aria_label": label or None,
            "class_": f"chart {class_}".strip(),
        },
        *children,
    )


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def arrow_marker(marker_id: str, color: str = "#8b94a3") -> Markup:
    """An arrowhead for edges (ids are per drawing: several SVGs share one page)."""
    return el(
        "marker",
        {
            "id": marker_id,
            "viewBox": "0 0 10 10",
            "refX": 9,
            "refY": 5,
            "markerWidth": 7,
            "markerHeight": 7,
            "orient": "auto-start-reverse",
        },
        el("path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": color}),
    )
