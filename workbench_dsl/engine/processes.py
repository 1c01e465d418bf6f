"""The processes behind the task runner: the warm worker's handle, deadlines, killing a tree.

``runner.py`` holds the attempts' logic; this module holds what it needs from
the operating system: the worker process (``worker.py``) and the thread that
reads its events, one thread for every attempt's deadline, and SIGKILL for a
process group plus whatever left it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar

from workbench_dsl.engine.requirements import python_path

T = TypeVar("T")
_PKG_PARENT = str(Path(__file__).resolve().parents[2])


class WorkerEvents(Protocol):
    """What a :class:`WorkerProcess` reports, from its reader thread."""

    def on_started(self, attempt_id: int, pid: int) -> None: ...
    def on_exit(self, attempt_id: int, code: int) -> None: ...
    def on_worker_died(self, worker: WorkerProcess) -> None: ...


class WorkerProcess:
    """The engine's handle on one warm worker process (``worker.py``) and its reader thread."""

    def __init__(self, events: WorkerEvents, tmp: Path) -> None:
        self._events = events
        self._wlock = threading.Lock()
        self.alive = True
        env = dict(os.environ)
        env["PYTHONPATH"] = python_path([_PKG_PARENT], env.get("PYTHONPATH"))
        # As in the pod's command line: kfp then skips importing its client (and the
        # kubernetes models), which halves the worker's memory and so each fork's cost.
        env["_KFP_RUNTIME"] = "true"
        self._err_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".err", dir=tmp)[1])
        with open(self._err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workbench_dsl.engine.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=tmp,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the engine, which decides
            )
        self._reader = threading.Thread(target=self._read, name="runner-worker", daemon=True)
        self._reader.start()

    def send(self, request: dict[str, Any]) -> None:
        data = (json.dumps(request) + "\n").encode()
        assert self.proc.stdin is not None
        with self._wlock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            event = msg.get("event")
            if event == "started":
                self._events.on_started(msg["id"], msg["pid"])
            elif event == "exit":
                self._events.on_exit(msg["id"], msg["code"])
        self.alive = False
        self.proc.wait()
        self._events.on_worker_died(self)

    def death_note(self) -> str:
        code = self.proc.returncode
        try:
            tail = self._err_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            tail = ""
        last = tail.splitlines()[-1] if tail else ""
        return f" (worker exit code {code}{': ' + last[:200] if last else ''})"

    def stop(self) -> None:
        """Close its input: the worker kills what still runs and exits."""
        self.alive = False
        with contextlib.suppress(OSError), self._wlock:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_tree(self.proc.pid)
            self.proc.wait()
        self._reader.join(timeout=5)


class Deadlines(Generic[T]):
    """One thread that calls ``fire(item)`` when an item's deadline passes."""

    def __init__(self, fire: Callable[[T], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def add(self, when: float, item: T) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), item))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="runner-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, item = heapq.heappop(self._heap)
            self._fire(item)


def kill_tree(pid: int) -> None:
    """SIGKILL a process group and every descendant that left it (setsid, daemons)."""
    victims = descendants(pid)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    for p in [pid, *victims]:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def open_log(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8")


def write_line(log: IO[str], text: str) -> None:
    if text:
        log.write(text + "\n")
        log.flush()
