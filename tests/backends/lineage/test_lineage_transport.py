"""Where events go: the local file by default, an OpenLineage HTTP backend (Marquez's API) when
configured the OpenLineage way, and a backend that is down never fails or stalls a run."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from workbench_dsl.backends.lineage import LineageRecorder, load_settings
from workbench_dsl.backends.lineage.emitter import Emitter
from workbench_dsl.cli.app import app
from workbench_dsl.paths import local_root


class Collector:
    """An OpenLineage HTTP endpoint on 127.0.0.1 that keeps what it is sent."""

    def __init__(self, status: int = 201, delay: float = 0.0) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                collector.received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def marquez() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(rec: LineageRecorder) -> None:
    rec.run_started("r1", "p", {"n": 1})
    rec.task_started("r1", "a")
    rec.task_finished("r1", "a", status="SUCCEEDED")
    rec.run_finished("r1", "SUCCEEDED")


def local_lines() -> list[dict[str, Any]]:
    return [json.loads(x) for x in local_root().lineage_events.read_text().splitlines()]


def test_default_is_the_local_file_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.enabled and s.remote is None and s.events_file == local_root().lineage_events
    rec = LineageRecorder()
    one_run(rec)
    assert rec.flush()
    assert [e["eventType"] for e in local_lines()] == ["START", "START", "COMPLETE", "COMPLETE"]


def test_openlineage_url_sends_the_same_events_over_http(
    marquez: Collector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENLINEAGE_URL", marquez.url)
    rec = LineageRecorder()
    one_run(rec)
    assert rec.flush(remote_timeout=10)
    assert [p for p, _ in marquez.received] == ["/api/v1/lineage"] * 4
    assert [e for _, e in marquez.received] == local_lines()


def test_openlineage_yml_in_the_working_directory(
    marquez: Collector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "openlineage.yml").write_text(
        f"transport:\n  type: http\n  url: {marquez.url}\n  endpoint: custom/lineage\n"
    )
    rec = LineageRecorder()
    one_run(rec)
    assert rec.flush(remote_timeout=10)
    assert {p for p, _ in marquez.received} == {"/custom/lineage"}
    assert len(marquez.received) == 4


def test_workbench_toml_url(
    marquez: Collector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "workbench.toml").write_text(
        f'[lineage]\nurl = "{marquez.url}"\nnamespace = "team-a"\n'
    )
    rec = LineageRecorder()
    one_run(rec)
    assert rec.flush(remote_timeout=10)
    assert {e["job"]["namespace"] for _, e in marquez.received} == {"team-a"}


def test_a_down_backend_warns_once_and_never_fails_or_stalls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{free_port()}")
    # OpenLineage's own retry policy (5 tries with backoff) is kept; the run must not wait for it.
    warnings: list[str] = []
    rec = LineageRecorder(emitter=Emitter(load_settings(), warn=warnings.append))
    t0 = time.monotonic()
    for i in range(5):
        one_run(rec)
        rec.run_started(f"x{i}", "p")
    calls = time.monotonic() - t0
    assert calls < 0.5  # the caller only queues
    t0 = time.monotonic()
    rec.flush(timeout=5, remote_timeout=1.0)
    assert time.monotonic() - t0 < 6.5
    assert len(local_lines()) == 25  # everything is in the local file
    assert len(warnings) == 1, warnings
    assert "workbench lineage --push" in warnings[0]


def test_a_slow_backend_is_abandoned_after_the_flush_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = Collector(delay=3.0)
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPENLINEAGE_URL", slow.url)
        warnings: list[str] = []
        rec = LineageRecorder(emitter=Emitter(load_settings(), warn=warnings.append))
        one_run(rec)
        t0 = time.monotonic()
        assert rec.flush(timeout=5, remote_timeout=0.5) is False
        assert time.monotonic() - t0 < 2.0
        assert len(warnings) == 1 and "did not take" in warnings[0]
        assert len(local_lines()) == 4
    finally:
        slow.close()


def test_lineage_push_replays_the_local_file(
    marquez: Collector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    rec = LineageRecorder()
    one_run(rec)
    rec.flush()
    runner = CliRunner()
    r = runner.invoke(app, ["lineage", "--push", "--json"])
    assert r.exit_code == 2 and "no OpenLineage backend is configured" in r.output
    monkeypatch.setenv("OPENLINEAGE_URL", marquez.url)
    r = runner.invoke(app, ["lineage", "--push", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sent"] == 4
    assert [e for _, e in marquez.received] == local_lines()


def test_concurrent_writers_keep_whole_lines(tmp_path: Path) -> None:
    from workbench_dsl.backends.lineage.emitter import append_lines

    path = tmp_path / "events.jsonl"
    big = "x" * 20000

    def writer(n: int) -> None:
        for i in range(30):
            append_lines(path, [json.dumps({"w": n, "i": i, "pad": big})])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 120 and all(json.loads(x)["pad"] == big for x in lines)


def test_an_event_is_written_without_nulls_and_with_sorted_keys() -> None:
    from workbench_dsl.backends.lineage.emitter import dumps

    assert dumps({"b": 1, "a": {"x": None, "y": [1, None, {"z": None}]}}) == (
        '{"a": {"y": [1, {}]}, "b": 1}'
    )
    assert dumps({"b": "null", "a": [2]}) == '{"a": [2], "b": "null"}'
