"""Ctrl-C and SIGTERM cancel a run cleanly (they post a Cancel message)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol


class Cancellable(Protocol):
    def cancel(self, reason: str = "cancelled") -> None: ...


def install_signal_handlers(run: Cancellable) -> Callable[[], None]:
    """Route SIGINT/SIGTERM to ``run.cancel`` (main thread only); returns a restore function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        name = "interrupted (Ctrl-C)" if signum == signal.SIGINT else "terminated (SIGTERM)"
        run.cancel(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass

    def restore() -> None:
        for sig, h in previous.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError):
                pass

    return restore
