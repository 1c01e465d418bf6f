"""The Prometheus exposition, parsed with prometheus_client's own text parser."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import LocalRoot
from workbench_dsl.telemetry.prometheus import METRICS, exposition
from workbench_dsl.telemetry.server import serve


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        assert fam.name in {n.removesuffix("_total") for n in METRICS}, fam.name
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def record(root: LocalRoot) -> None:
    store = RunStore(root.ensure().runs_db)
    for run_id, status, cost in (("r1", "SUCCEEDED", 0.5), ("r2", "FAILED", 0.25)):
        store.create_run(run_id, "churn", "{}", "x", {}, {}, None)
        store.upsert_task(
            run_id,
            "train",
            {
                "kind": "container",
                "component": "comp-train",
                "status": status,
                "duration_s": 4.0,
                "attempts": 3 if status == "FAILED" else 1,
                "cost_per_hour": 2.0,
            },
        )
        store.upsert_task(
            run_id,
            "load",
            {"kind": "container", "component": "comp-load", "status": "CACHED", "cached": 1},
        )
        store.finish_run(run_id, status, None, {}, cost)
    store.create_run("r3", "churn", "{}", "x", {}, {}, None)
    store.upsert_task(
        "r3",
        "train",
        {"kind": "container", "component": "comp-train", "status": "RUNNING", "cost_per_hour": 3.5},
    )
    store.close()


def test_runs_tasks_and_cost(workbench_home: Path) -> None:
    root = LocalRoot(workbench_home)
    record(root)
    got = samples(exposition(root).decode())
    churn = (("pipeline", "churn"),)
    train = (("component", "comp-train"), ("pipeline", "churn"))
    assert got[("workbench_runs_total", (*churn, ("status", "SUCCEEDED")))] == 1
    assert got[("workbench_runs_total", (*churn, ("status", "FAILED")))] == 1
    assert got[("workbench_runs_in_progress", churn)] == 1
    assert got[("workbench_run_cost_dollars_count", churn)] == 2
    assert got[("workbench_run_cost_dollars_sum", churn)] == pytest.approx(0.75)
    assert got[("workbench_task_duration_seconds_count", train)] == 2
    assert (
        got[("workbench_task_duration_seconds_bucket", tuple(sorted((*train, ("le", "2.5")))))] == 0
    )
    assert (
        got[("workbench_task_duration_seconds_bucket", tuple(sorted((*train, ("le", "5.0")))))] == 2
    )
    assert got[("workbench_task_retries_total", train)] == 2
    load = (("component", "comp-load"), ("pipeline", "churn"))
    assert got[("workbench_task_cache_hits_total", load)] == 2
    assert got[("workbench_tasks_running_cost_dollars_per_hour", churn)] == 3.5


def test_a_run_whose_engine_died_is_not_in_flight_and_costs_nothing(workbench_home: Path) -> None:
    import subprocess
    import sys

    root = LocalRoot(workbench_home)
    record(root)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    store = RunStore(root.runs_db)
    store.create_run("r4", "churn", "{}", "x", {}, {}, None)
    store.upsert_task(
        "r4", "train", {"kind": "container", "status": "RUNNING", "cost_per_hour": 9.0}
    )
    store.conn.execute("UPDATE runs SET pid=? WHERE run_id='r4'", (int(gone.stdout),))
    store.close()
    got = samples(exposition(root).decode())
    churn = (("pipeline", "churn"),)
    assert got[("workbench_runs_in_progress", churn)] == 1  # r3 only
    assert got[("workbench_tasks_running_cost_dollars_per_hour", churn)] == 3.5


@pytest.fixture
def server(workbench_home: Path) -> Iterator[int]:
    stop = threading.Event()
    port: list[int] = []
    ready = threading.Event()

    def on_ready(p: int) -> None:
        port.append(p)
        ready.set()

    t = threading.Thread(target=serve, args=(LocalRoot(workbench_home), 0, stop, on_ready))
    t.start()
    assert ready.wait(10)
    yield port[0]
    stop.set()
    t.join(10)


def get(port: int, path: str, host: str) -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Host": host})
    r = c.getresponse()
    return r.status, r.read().decode()


def test_metrics_serve_answers_loopback_names_only(server: int, workbench_home: Path) -> None:
    record(LocalRoot(workbench_home))
    status, text = get(server, "/metrics", f"127.0.0.1:{server}")
    assert status == 200
    assert samples(text)[("workbench_runs_in_progress", (("pipeline", "churn"),))] == 1
    assert get(server, "/metrics", f"localhost:{server}")[0] == 200
    assert get(server, "/metrics", "evil.example:80")[0] == 403
    assert get(server, "/", f"127.0.0.1:{server}")[0] == 404


def test_metrics_serve_reads_the_whole_host_value(server: int) -> None:
    for host in ("localhost:1@evil.example", "[::1]evil.example", "localhost.", "127.0.0.1.nip.io"):
        assert get(server, "/metrics", host)[0] == 403, host
    assert get(server, "/metrics", f"[::1]:{server}")[0] == 200
    # Two Host headers (which one counts is each parser's guess) are refused.
    for second in ("evil.example", f"127.0.0.1:{server}"):
        c = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
        c.putrequest("GET", "/metrics", skip_host=True)
        c.putheader("Host", f"127.0.0.1:{server}")
        c.putheader("Host", second)
        c.endheaders()
        assert c.getresponse().status in (400, 403), second


def test_ui_serves_the_same_metrics(workbench_home: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "ui"))
    from ui_helpers import make_client

    record(LocalRoot(workbench_home))
    c = make_client(workbench_home)
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert (
        samples(r.text)[("workbench_runs_total", (("pipeline", "churn"), ("status", "FAILED")))]
        == 1
    )
    assert make_client(workbench_home, client_host="10.1.2.3").get("/metrics").status_code == 403
