"""The server processes of local endpoints: start detached, tell alive from gone, stop, talk HTTP."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from workbench_dsl import _detach, _procs
from workbench_dsl.backends.deployer import DeployError
from workbench_dsl.paths import LocalRoot

STOP_TIMEOUT_S = 10.0
#: Servers started by this process, so they are reaped (not left as zombies) when stopped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ServerProcess(Protocol):
    """What the deployer needs of a started server: its pid, and whether it ended."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...


class _EngineChild:
    """A server the engine started for this task: not our child, so watched by pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _procs.alive(self.pid):
            self.returncode = -1  # not our child: its exit status is the engine's
        return self.returncode


def spawn_server(root: LocalRoot, name: str) -> ServerProcess:
    """Start the server of endpoint ``name`` in a session of its own (it outlives the caller).

    A fresh admin secret (mode 0600) is written for its control routes first.
    Inside a local run the engine starts it (``workbench_dsl._detach``): a
    process a task starts itself ends with the run.
    """
    d = root.endpoints / name
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / "admin.token", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(24))
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sock = _detach.engine_socket()
    try:
        if sock is not None:
            return _EngineChild(_detach.ask_engine(sock, root.root, name, pythonpath))
        env = _detach.server_env(os.environ, root.root, pythonpath)
        proc = _detach.start_server(root.root, name, env)
    except _detach.SpawnError as e:
        raise DeployError(f"endpoint {name}: {e}") from None
    _CHILDREN[proc.pid] = proc
    return proc


def is_child(pid: int) -> bool:
    return pid in _CHILDREN


def free_port(used: set[int]) -> int:
    """A port on 127.0.0.1 that nothing listens on and no other endpoint has recorded."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in used:
            return port
    raise DeployError("no free port on 127.0.0.1")


def terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop a server and every process under it (a predictor's workers, a backend).

    SIGTERM first (KServe drains its requests), SIGKILL for whatever is left after
    ``timeout``. The tree is listed before anything is signalled: once a parent
    is gone its children are re-parented and no longer show below it.
    """
    tree = [(p, _procs.start_time(p)) for p in _procs.descendants(pid)]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        _procs.kill_tree(pid)
        while alive(pid):
            time.sleep(0.05)
    # Never signal a pid that another program has taken since (the start time tells).
    _procs.kill(p for p, start in tree if start is not None and _procs.alive(p, start))


def alive(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    return _procs.alive(pid)


def is_server(pid: int, name: str) -> bool:
    args = _procs.cmdline(pid)
    return _detach.ENDPOINT_SERVER.encode() in args and name.encode() in args


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` (closed connections in TIME_WAIT don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def http(
    method: str, url: str, body: Any, headers: dict[str, str], *, timeout: float
) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status, got = resp.read(), resp.status, dict(resp.headers.items())
    except urllib.error.HTTPError as e:
        raw, status, got = e.read(), e.code, dict(e.headers.items())
    try:
        reply = json.loads(raw) if raw else None
    except ValueError:
        reply = raw.decode("utf-8", errors="replace")
    return status, reply, {k.lower(): v for k, v in got.items()}
