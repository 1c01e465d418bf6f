"""Status lines: the one line of progress a running task writes (``_env.set_status``).

A watcher thread polls the status files of running tasks twice a second and
posts a :class:`~.messages.StatusLine` when one changed; the loop shows it and,
when it says ``waiting for approval``, moves the task to WAITING_FOR_APPROVAL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench_dsl.engine.orchestrator import messages as m


def read_line(path: Path | str | None) -> str | None:
    """The first 400 characters of a status file, on one line (None when absent or empty)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(400)
    except OSError:
        return None
    text = text.strip().replace("\n", " ")
    return text or None


class StatusWatcher:
    """Posts a message whenever a running task's status file changes."""

    def __init__(
        self,
        files: dict[str, Path],
        running: dict[str, Any],
        post: Callable[[m.StatusLine], None],
        interval: float = 0.5,
    ) -> None:
        self.lock = threading.Lock()  # guards ``files``, which the loop adds to
        self._files = files
        self._running = running
        self._post = post
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="wb-status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        seen: dict[str, float] = {}
        while not self._stop.wait(self._interval):
            with self.lock:
                files = {q: p for q, p in self._files.items() if q in self._running}
            for qname, path in files.items():
                try:
                    mtime = path.stat().st_mtime
                except OSError:
                    continue
                if seen.get(qname) == mtime:
                    continue
                seen[qname] = mtime
                line = read_line(path)
                if line:
                    self._post(m.StatusLine(qname, line))
