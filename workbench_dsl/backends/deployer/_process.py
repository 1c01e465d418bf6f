"""The server processes of local endpoints: start detached, tell alive from gone, stop, talk HTTP."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from workbench_dsl import _env
from workbench_dsl.backends.deployer import DeployError
from workbench_dsl.paths import LocalRoot

STOP_TIMEOUT_S = 10.0
#: The engine's per-task variables: a server is not a task of the run that started it.
_TASK_VARIABLES = {
    _env.ENGINE,
    _env.RUN_ID,
    _env.PIPELINE,
    _env.TASK,
    _env.ATTEMPT,
    _env.RUN_DIR,
    _env.STATUS_FILE,
}
#: Servers started by this process, so they are reaped (not left as zombies) when stopped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn_server(root: LocalRoot, name: str) -> subprocess.Popen[bytes]:
    """Start the server of endpoint ``name`` in a session of its own (it outlives the caller).

    A fresh admin secret (mode 0600) is written for its control routes first.
    """
    d = root.endpoints / name
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / "admin.token", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(24))
    env = {k: v for k, v in os.environ.items() if k not in _TASK_VARIABLES}
    env[_env.HOME] = str(root.root)
    env[_env.DETACHED] = "1"  # the engine's task runner must not end it with the run
    env["PYTHONUNBUFFERED"] = "1"
    with open(d / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench_dsl.backends.deployer._server", "local", name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(d),
            env=env,
            start_new_session=True,  # outlive the task, the run and the engine
        )
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


def terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while alive(pid):
            time.sleep(0.05)


def alive(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def is_server(pid: int, name: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return b"workbench_dsl.backends.deployer._server" in args and name.encode() in args


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
