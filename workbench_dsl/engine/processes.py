"""The processes behind the task runner: the warm worker's handle, deadlines, the endpoint spawner.

``runner.py`` holds the attempts' logic; this module holds what it needs from
the operating system: the worker process (``worker.py``) and the thread that
reads its events, one thread for every attempt's deadline, and the socket
through which a task of the run asks for a local endpoint's server
(``workbench_dsl._detach``). Killing a tree is ``workbench_dsl._procs``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar

from workbench_dsl import _detach, _env, _procs
from workbench_dsl._procs import kill_tree
from workbench_dsl.engine import cgroups
from workbench_dsl.engine.requirements import python_path

T = TypeVar("T")
_PKG_PARENT = str(Path(__file__).resolve().parents[2])


class WorkerEvents(Protocol):
    """What a :class:`WorkerProcess` reports, from its reader thread."""

    def on_started(self, attempt_id: int, pid: int) -> None: ...
    def on_exit(self, attempt_id: int, code: int, oom: bool) -> None: ...
    def on_worker_died(self, worker: WorkerProcess) -> None: ...


class WorkerProcess:
    """The engine's handle on one warm worker process (``worker.py``) and its reader thread."""

    def __init__(self, events: WorkerEvents, tmp: Path, cgroup: Path | None = None) -> None:
        self._events = events
        self._wlock = threading.Lock()
        self.alive = True
        env = dict(os.environ)
        if cgroup is not None:  # the worker moves itself there before it forks anything
            env[_env.WORKER_CGROUP] = str(cgroup)
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
                self._events.on_exit(msg["id"], msg["code"], bool(msg.get("oom")))
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


class Spawner:
    """The engine's end of ``WORKBENCH_SPAWNER``: starts endpoint servers for the run's tasks.

    Args:
        sock_path: Where to listen (in a 0700 folder of the runner's).
        home: The local root; a request for another root is refused.
        layers: The folder of package layers: the only ``PYTHONPATH`` entries a
            request may add to the server's path (a task's pip target is gone
            once the attempt ends).
        belongs: Whether a pid is a process of this run.
    """

    def __init__(
        self, sock_path: Path, home: Path, layers: Path, belongs: Callable[[int], bool]
    ) -> None:
        self.path = sock_path
        self._home, self._layers, self._belongs = home, layers, belongs
        self._started: dict[str, subprocess.Popen[bytes]] = {}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(sock_path))
        os.chmod(sock_path, 0o600)
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, name="runner-spawner", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    conn.settimeout(10)
                    reply = self._handle(conn)
                except Exception as exc:  # one bad request never stops the spawner
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode() + b"\n")

    def _handle(self, conn: socket.socket) -> dict[str, Any]:
        buf = b""
        while b"\n" not in buf and len(buf) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            buf += chunk
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid() or not self._belongs(pid):
            return {"error": "only a task of this run may ask for an endpoint's server"}
        req = json.loads(buf.split(b"\n", 1)[0])
        if not isinstance(req, dict) or req.get("op") != "endpoint-server":
            return {"error": "unknown request"}
        if os.path.realpath(str(req.get("home"))) != os.path.realpath(self._home):
            return {"error": f"this run's local root is {self._home}, not {req.get('home')}"}
        layers = os.path.realpath(self._layers) + os.sep
        paths = [
            p
            for p in req.get("pythonpath") or []
            if isinstance(p, str) and os.path.realpath(p).startswith(layers)
        ]
        name = str(req.get("name"))
        running = self._started.get(name)
        if running is not None and running.poll() is None:
            # One server per endpoint: a redeploy stops the old one before it asks.
            return {"error": f"the server of endpoint {name} (pid {running.pid}) still runs"}
        env = _detach.server_env(os.environ, self._home, paths)
        try:
            proc = _detach.start_server(self._home, name, env)
        except _detach.SpawnError as exc:
            return {"error": str(exc)}
        self._started[name] = proc  # polled, so an ended server is reaped
        return {"pid": proc.pid}


def in_run(pid: int, worker_pid: int | None, cgroup: Path | None) -> bool:
    """Whether ``pid`` is a process of the run: in its cgroup, or below its warm worker."""
    if cgroup is not None:
        return cgroups.holds(cgroup, pid)
    seen = 0
    current: int | None = pid
    while current and current > 1 and seen < 256:
        if current == worker_pid:
            return True
        current, seen = _procs.parent(current), seen + 1
    return False
