"""The one process that outlives a run: a local endpoint's server, started by the engine on request.

Everything a task starts ends with the task or its run (``engine/cgroups.py``,
``engine/worker.py``). A local endpoint must outlive the run that deployed it,
so the deploy step does not start its server itself: it asks the engine,
through the Unix socket named by ``WORKBENCH_SPAWNER``, and the engine checks
the asking process (its uid, and that it is a process of the run, by
``SO_PEERCRED``) and starts the server as its own child, outside the run's
cgroup and process tree. The request names only an endpoint: the program is
fixed here. Outside the engine (``workbench endpoints up``) the caller starts
the server itself. A task cannot forge any of this: a process it starts, with
whatever environment, is still in the run's cgroup or tree and ends with it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench_dsl import _env

ENDPOINT_SERVER = "workbench_dsl.backends.deployer._server"
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$")
_PKG_PARENT = str(Path(__file__).resolve().parents[1])


class SpawnError(Exception):
    """The engine refused or failed to start the server; the message says why."""


def server_env(base: Mapping[str, str], home: Path, pythonpath: list[str]) -> dict[str, str]:
    """The environment of an endpoint server: ``base`` without any task's or engine's variables."""
    drop = {*_env.TASK_VARIABLES, *_env.ENGINE_INTERNAL, *_env.USER_SECRETS}
    env = {k: v for k, v in base.items() if k not in drop}
    env[_env.HOME] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_PKG_PARENT, *pythonpath]))
    return env


def start_server(home: Path, name: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the server of endpoint ``name`` of the local root ``home`` in a session of its own."""
    if not _NAME.match(name):
        raise SpawnError(f"{name!r} is not an endpoint name")
    folder = home / "endpoints" / name
    if not folder.is_dir():
        raise SpawnError(f"endpoint {name} has no folder under {home / 'endpoints'}")
    with open(folder / "server.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", ENDPOINT_SERVER, "local", name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(folder),
            env=dict(env),
            start_new_session=True,
        )


def ask_engine(sock_path: str, home: Path, name: str, pythonpath: list[str]) -> int:
    """Ask the engine to start endpoint ``name``'s server; returns its pid."""
    request = {"op": "endpoint-server", "home": str(home), "name": name, "pythonpath": pythonpath}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(sock_path)
            s.sendall(json.dumps(request).encode() + b"\n")
            reply = _read_line(s)
    except OSError as e:
        raise SpawnError(f"the engine did not start the endpoint's server: {e}") from None
    if "pid" not in reply:
        raise SpawnError(
            str(reply.get("error") or "the engine did not start the endpoint's server")
        )
    return int(reply["pid"])


def _read_line(s: socket.socket) -> dict[str, Any]:
    buf = b""
    while b"\n" not in buf and len(buf) < 65536:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    try:
        data = json.loads(buf.split(b"\n", 1)[0] or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def engine_socket() -> str | None:
    """The engine's spawner socket when this process is a task of a local run."""
    return os.environ.get(_env.SPAWNER) or None
