"""``workbench ui`` itself: it prints a URL with a fresh token, binds 127.0.0.1, serves, stops on
Ctrl-C, and says which port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@contextmanager
def _ui(home: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("WORKBENCH_UI_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench_dsl", "ui", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield proc, line
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_serves_on_loopback_with_a_fresh_token(workbench_home: Path) -> None:
    with _ui(workbench_home, "--port", "0") as (proc, line):
        assert line.startswith("workbench ui: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        base, _, token = url.partition("/?token=")
        assert len(token) >= 24
        port = int(base.rsplit(":", 1)[1])
        # Bound to 127.0.0.1 only: the port is not open on the machine's other addresses.
        listening = [c.laddr for c in _connections(proc.pid) if c.status == "LISTEN"]
        assert all(addr.ip == "127.0.0.1" for addr in listening), listening
        with urllib.request.urlopen(f"{base}/runs", timeout=10) as r:
            assert r.status == 200 and b"No runs yet" in r.read()
        request = urllib.request.Request(f"{base}/schedules/x/pause", method="POST", data=b"")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
        authorized = urllib.request.Request(
            f"{base}/schedules/x/pause",
            method="POST",
            data=b"",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(authorized, timeout=10)
        assert missing.value.code == 400 and b"no schedule named" in missing.value.read()
        assert port > 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_a_taken_port_is_a_clear_error(workbench_home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "workbench_dsl", "ui", "--port", str(port)],
            env={**os.environ, "WORKBENCH_HOME": str(workbench_home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use; pick another with --port" in proc.stderr


def _connections(pid: int) -> list:  # type: ignore[type-arg]
    import psutil

    proc = psutil.Process(pid)
    listed = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6
    return list(listed(kind="inet"))
