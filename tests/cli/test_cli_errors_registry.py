"""The registry commands on bad input: a version that is not a number, a tracking URI
MLflow does not know, a tracking server that does not answer. One line, no hang."""

from __future__ import annotations

import socket
import time

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()


def one_error_line(r: object) -> str:
    lines = r.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, r.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ") and "internal error" not in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_a_version_that_is_not_a_number_is_bad_input(command: str) -> None:
    r = runner.invoke(app, [command, "churn", "latest", "-m", "why"])
    assert r.exit_code == 2
    assert "bad version 'latest'" in one_error_line(r)


def test_an_unknown_tracking_uri_scheme_is_bad_input() -> None:
    r = runner.invoke(app, ["models", "list", "--tracking-uri", "bogus://x", "--json"])
    assert r.exit_code == 2
    assert "bogus://x" in one_error_line(r)
    assert r.stdout == ""


def test_a_tracking_server_that_does_not_answer_fails_in_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    r = runner.invoke(app, ["models", "list", "--tracking-uri", f"http://127.0.0.1:{port}"])
    assert time.monotonic() - started < 30
    assert r.exit_code == 1
    assert f"cannot reach the MLflow registry at http://127.0.0.1:{port}" in one_error_line(r)
