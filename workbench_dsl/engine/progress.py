"""Showing a run as it goes: a live ``rich`` view on a terminal, plain lines elsewhere.

Both are :class:`~workbench_dsl.engine.events.RunObserver` s writing to
stderr (stdout stays for ``--json``). The live view keeps a header with
tasks done / running / cached / failed and one line per running task with
its elapsed time and the status line it published
(``workbench_dsl._env.set_status``); finished tasks scroll above it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from workbench_dsl.engine.events import BaseObserver, RunInfo, TaskInfo

_MARK = {
    "SUCCEEDED": "✓",
    "FAILED": "✗",
    "SKIPPED": "-",
    "NOT_RUN": "·",
    "CANCELLED": "!",
}


def _fmt_s(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def task_line(t: TaskInfo) -> str:
    """One line for a finished task."""
    mark = _MARK.get(t.status, "?")
    if t.status == "SUCCEEDED":
        how = "cached" if t.cached else ("done earlier" if t.reused else _fmt_s(t.duration_s))
        retries = f", {t.attempt} attempts" if t.attempt > 1 else ""
        return f"{mark} {t.task} ({how}{retries})"
    if t.status == "FAILED":
        return f"{mark} {t.task} failed: {t.error}"
    return f"{mark} {t.task} {t.status.lower().replace('_', ' ')}"


class Counts:
    def __init__(self) -> None:
        self.done = self.running = self.cached = self.failed = self.skipped = 0

    def update(self, event: str, t: TaskInfo) -> None:
        if event == "start":
            if not (t.cached or t.reused):
                self.running += 1
            return
        if not (t.cached or t.reused) and t.attempt > 0:
            self.running = max(0, self.running - 1)
        if t.status == "SUCCEEDED":
            self.done += 1
            self.cached += int(t.cached)
        elif t.status == "FAILED":
            self.failed += 1
        else:
            self.skipped += 1

    def text(self) -> str:
        parts = [f"{self.done} done", f"{self.running} running"]
        if self.cached:
            parts.append(f"{self.cached} cached")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped/not run")
        return ", ".join(parts)


class PlainProgress(BaseObserver):
    """Plain lines on stderr: each task as it ends, notices, and the run's start."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_run_start(self, run: RunInfo) -> None:
        if not self.quiet:
            verb = "resuming" if run.resumed else "run"
            self._say(f"{verb} {run.run_id}: pipeline {run.pipeline}")

    def on_task_end(self, task: TaskInfo) -> None:
        if not self.quiet:
            self._say(task_line(task))

    def on_notice(self, message: str) -> None:
        self._say(f"note: {message}")


class LiveProgress(BaseObserver):
    """A live view for terminals, drawn by ``rich`` on stderr."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.counts = Counts()
        self.running: dict[str, float] = {}
        self.lines: dict[str, str] = {}
        self.run: RunInfo | None = None
        self._lock = threading.Lock()
        self._live: Any = None
        self.t0 = time.time()

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        with self._lock:
            head = f"{self.run.pipeline if self.run else ''} · {self.counts.text()} · {_fmt_s(time.time() - self.t0)}"
            grid.add_row(Text("●", style="cyan"), Text(head, style="bold"))
            now = time.time()
            for name, since in list(self.running.items())[:20]:
                line = self.lines.get(name, "")
                grid.add_row(
                    Text(_fmt_s(now - since).rjust(6), style="dim"),
                    Text(f"{name}" + (f"  {line}" if line else ""), overflow="ellipsis"),
                )
            extra = len(self.running) - 20
            if extra > 0:
                grid.add_row(Text(""), Text(f"... and {extra} more running", style="dim"))
        return grid

    def on_run_start(self, run: RunInfo) -> None:
        from rich.live import Live

        self.run = run
        self.t0 = time.time()
        verb = "resuming" if run.resumed else "run"
        self.console.print(f"[bold]{verb} {run.run_id}[/]: pipeline {run.pipeline}")
        self._live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=8,
            transient=True,
        )
        self._live.start()

    def on_task_start(self, task: TaskInfo) -> None:
        with self._lock:
            self.counts.update("start", task)
            if not (task.cached or task.reused):
                self.running.setdefault(task.task, time.time())

    def on_task_end(self, task: TaskInfo) -> None:
        with self._lock:
            self.counts.update("end", task)
            self.running.pop(task.task, None)
            self.lines.pop(task.task, None)
        from rich.text import Text

        style = {"SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(
            task.status, "dim"
        )
        self.console.print(Text(task_line(task), style=style))

    def on_task_status(self, task: str, line: str) -> None:
        with self._lock:
            self.lines[task] = line

    def on_notice(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text(f"note: {message}", style="yellow"))

    def on_run_end(self, run: RunInfo) -> None:
        self.stop()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def for_terminal(json_mode: bool) -> BaseObserver:
    """The progress observer that fits stderr: live on a terminal, plain lines otherwise."""
    if json_mode:
        return PlainProgress(quiet=True)
    if sys.stderr.isatty():
        try:
            return LiveProgress()
        except Exception:  # pragma: no cover - a terminal rich cannot drive
            return PlainProgress()
    return PlainProgress()
