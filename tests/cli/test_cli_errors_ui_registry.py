"""`workbench ui` with a tracking server that does not answer: the models page says so in
seconds (as `workbench models` does), not after MLflow's minutes of retries."""

from __future__ import annotations

import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_models_page_with_an_unanswering_tracking_server_fails_fast(
    workbench_home: Path,
) -> None:
    dead, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    env["WORKBENCH_HOME"] = str(workbench_home)
    args = ["ui", "--port", str(port), "--token", "t", "--tracking-uri", f"http://127.0.0.1:{dead}"]
    ui = subprocess.Popen(
        [sys.executable, "-m", "workbench_dsl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert ui.stdout is not None
        ui.stdout.readline()  # the URL: it listens
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        opener.open(f"http://127.0.0.1:{port}/?token=t", timeout=30).read()
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(f"http://127.0.0.1:{port}/models", timeout=60)
        assert time.monotonic() - started < 30
        assert "cannot reach the MLflow registry" in e.value.read().decode()
    finally:
        ui.terminate()
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait()
