"""Status lines: the one line of progress a running task writes (``_env.set_status``).

A task writes its line to a file of its own (:func:`task_file`); a watcher
thread polls those of running tasks twice a second and, when one changed,
copies the line with every secret value masked to the status file the run
store names (``runs show`` reads it for a running task) and posts a
:class:`~.messages.StatusLine`; the loop shows it and, when it says ``waiting
for approval``, moves the task to WAITING_FOR_APPROVAL. When the attempt ends
the task's own file is copied once more and deleted (:func:`settle`), so only
masked lines stay on disk.
"""

from __future__ import annotations

import os
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


def task_file(shown: Path) -> Path:
    """Where a task writes the line that ``shown`` holds masked (``WORKBENCH_STATUS_FILE``)."""
    return shown.with_suffix(".task")


def publish(shown: Path, mask: Callable[[str], str]) -> str | None:
    """Copy the task's line to ``shown`` masked (owner-only); returns it (None: no line)."""
    line = read_line(task_file(shown))
    if not line:
        return None
    line = mask(line)
    tmp = shown.with_name(f"{shown.name}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(line)
        os.replace(tmp, shown)
    except OSError:
        return line
    return line


def settle(shown: Path, mask: Callable[[str], str]) -> None:
    """An attempt ended: its last line is copied masked and the task's own file deleted."""
    publish(shown, mask)
    try:
        task_file(shown).unlink()
    except OSError:
        pass


class StatusWatcher:
    """Posts a message whenever a running task's status file changes."""

    def __init__(
        self,
        files: dict[str, Path],
        running: dict[str, Any],
        post: Callable[[m.StatusLine], None],
        mask: Callable[[str], str],
        interval: float = 0.5,
    ) -> None:
        self.lock = threading.Lock()  # guards ``files``, which the loop adds to
        self._files = files
        self._running = running
        self._post = post
        self._mask = mask
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
                    mtime = task_file(path).stat().st_mtime
                except OSError:
                    continue
                if seen.get(qname) == mtime:
                    continue
                seen[qname] = mtime
                line = publish(path, self._mask)
                if line:
                    self._post(m.StatusLine(qname, line))
