"""How the dashboard writes durations, money, times and sizes (also its Jinja filters)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any


def duration(s: float | None) -> str:
    """``1.2s``, ``3m05s``, ``2h10m``; ``-`` when unknown."""
    if s is None:
        return "-"
    s = float(s)
    if s < 10:
        return f"{s:.2f}s" if s < 1 else f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    m, sec = divmod(int(s), 60)
    return f"{m}m{sec:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def money(v: float | None) -> str:
    """Dollars with enough digits to tell small task costs apart; ``-`` for none."""
    if not v:
        return "-"
    v = float(v)
    if v >= 100:
        return f"${v:,.0f}"
    if v >= 1:
        return f"${v:,.2f}"
    if v >= 0.01:
        return f"${v:.4f}"
    return f"${v:.6f}"


def when(ts: float | str | None) -> str:
    """A local time to the second (``2026-11-23 14:13:07``); ``-`` when unknown."""
    if ts is None or ts == "":
        return "-"
    if isinstance(ts, str):
        utc = ts.endswith(("+00:00", "Z"))
        return ts.replace("T", " ")[:19] + (" UTC" if utc else "")
    return datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: float | None) -> str:
    """How long ago ``ts`` was, roughly (``5 min ago``)."""
    if not ts:
        return "-"
    d = max(0.0, time.time() - float(ts))
    if d < 60:
        return f"{d:.0f} s ago"
    if d < 3600:
        return f"{d / 60:.0f} min ago"
    if d < 86400:
        return f"{d / 3600:.0f} h ago"
    return f"{d / 86400:.0f} days ago"


def size(n: int | None) -> str:
    """Bytes as ``12.3 kB``."""
    if n is None:
        return "-"
    v = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if v < 1000 or unit == "GB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1000
    return f"{n} B"


def number(v: Any) -> str:
    """A metric value: four significant digits for floats, as-is otherwise."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def percent(v: float | None) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"


FILTERS = {
    "duration": duration,
    "money": money,
    "when": when,
    "ago": ago,
    "size": size,
    "number": number,
    "percent": percent,
}
