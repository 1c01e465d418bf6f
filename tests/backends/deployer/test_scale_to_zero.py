"""Scale to zero, locally: a real activator and real KServe model servers on 127.0.0.1.

An endpoint deployed with ``min_replicas=0`` and a canary, behind a bearer token,
goes to sleep after ``scale_to_zero_after`` idle seconds (its model server and
every process under it gone), is not woken by checks or refused requests, and
answers every one of a burst of requests that arrives while asleep after exactly
one cold start, which ``endpoints show``/``list`` and ``/metrics`` report.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from workbench_dsl import _procs
from workbench_dsl.backends.deployer import DeploySpec, local_deployer
from workbench_dsl.backends.deployer._process import http
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.cli.app import app
from workbench_dsl.paths import LocalRoot
from workbench_dsl.telemetry.prometheus import exposition

pytestmark = pytest.mark.slow

IDLE_S = 2
# A predictor that starts a helper process of its own: scaling down must end it too.
PREDICTOR = """
import subprocess, sys
class Answer:
    def load(self, path):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(path + "/helpers", "a") as f:
            f.write(f"{{helper.pid}}\\n")
        self.answer = {answer}
    def predict(self, instances):
        return [self.answer for _ in instances]
"""


@pytest.fixture
def deployer(workbench_home: Path) -> Iterator[LocalDeployer]:
    d = local_deployer()
    try:
        yield d
    finally:
        d.stop_all()


def _spec(tmp: Path, n: int, **kw: Any) -> DeploySpec:
    storage = tmp / f"m{n}"
    storage.mkdir(exist_ok=True)
    return DeploySpec(
        endpoint="sleepy",
        model_uri=f"models:/sleepy/{n}",
        storage=str(storage),
        protocol="v1",
        predictor_source=PREDICTOR.format(answer=n),
        predictor_name="Answer",
        min_replicas=0,
        scale_to_zero_after=IDLE_S,
        auth="token",
        cost_per_hour=0.4,
        **kw,
    )


def _status(d: LocalDeployer) -> dict[str, Any]:
    row = d.store.get("sleepy")
    assert row is not None
    _, reply, _ = http("GET", f"http://127.0.0.1:{row.port}/_workbench/status", None, {}, timeout=5)
    assert isinstance(reply, dict)
    return reply


def _wait_asleep(d: LocalDeployer) -> None:
    deadline = time.monotonic() + IDLE_S + 15
    while _status(d)["scale"] != "scaled to zero":
        assert time.monotonic() < deadline, _status(d)
        time.sleep(0.2)


def _ui_client(home: Path) -> Any:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "ui"))
    from ui_helpers import make_client

    return make_client(home)


def _metrics(home: Path) -> dict[tuple[str, str], float]:
    text = exposition(LocalRoot(home)).decode()
    return {
        (s.name, s.labels.get("le", "")): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.labels.get("endpoint") == "sleepy"
    }


def test_sleeps_when_idle_and_wakes_once_for_a_burst(
    deployer: LocalDeployer, workbench_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployer.deploy(_spec(tmp_path, 1))  # the deploy loads the revision: one cold start
    token = deployer.rotate_token("sleepy")
    deployer.deploy(_spec(tmp_path, 2, canary_percent=50))
    server = _status(deployer)["model_server_pid"]
    assert server and _procs.alive(server)
    got = _metrics(workbench_home)
    assert got[("workbench_endpoint_replicas", "")] == 1
    assert got[("workbench_endpoint_cost_dollars_per_hour", "")] == pytest.approx(0.4)

    _wait_asleep(deployer)
    helpers = [int(p) for n in (1, 2) for p in (tmp_path / f"m{n}" / "helpers").read_text().split()]
    assert helpers and not _procs.alive(server)
    assert not any(_procs.alive(p) for p in helpers), "the model server's children outlived it"
    starts = deployer.get("sleepy").scale
    assert starts is not None and starts.state == "scaled to zero"

    # Checks, `up` and refused requests never wake it; it is up, not down.
    assert deployer.up() and deployer.get("sleepy").state == "scaled to zero"
    assert deployer.predict("sleepy", {"instances": [[1]]})[0] == 401
    assert deployer.predict("sleepy", {"instances": [[1]]}, token="wrong")[0] == 401
    got = _metrics(workbench_home)
    assert got[("workbench_endpoint_up", "")] == 1
    assert got[("workbench_endpoint_replicas", "")] == 0
    assert got[("workbench_endpoint_cost_dollars_per_hour", "")] == 0
    page = _ui_client(workbench_home).get("/endpoints")
    assert page.status_code == 200
    assert f"Scales to zero after {IDLE_S}s idle" in page.text
    assert "Scaled to zero: no model server runs" in page.text
    still = deployer.get("sleepy").scale
    assert still is not None and (still.state, still.cold_starts) == (
        "scaled to zero",
        starts.cold_starts,
    )

    # A burst while asleep: every request answered, by both revisions, one cold start.
    replies: list[tuple[int, Any, str | None]] = []

    def ask() -> None:
        replies.append(deployer.predict("sleepy", {"instances": [[1]]}, token=token))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert _status(deployer)["scale"] == "starting"
    for t in threads:
        t.join(60)
    assert [status for status, _, _ in replies] == [200] * 8, replies
    assert Counter(rev for _, _, rev in replies) == {
        "sleepy-predictor-00001": 4,
        "sleepy-predictor-00002": 4,
    }
    after = deployer.get("sleepy").scale
    assert after is not None and after.state == "running"
    assert after.cold_starts == starts.cold_starts + 1
    assert after.last_cold_start_s is not None and 0 < after.last_cold_start_s < 60
    assert after.idle_ratio is not None and 0 <= after.idle_ratio < 1

    runner = CliRunner(env={"WORKBENCH_HOME": str(workbench_home)})
    shown = runner.invoke(app, ["endpoints", "show", "sleepy"])
    assert shown.exit_code == 0, shown.output
    assert "sleepy  running" in shown.stdout
    assert f"scales to zero after {IDLE_S}s idle" in shown.stdout
    assert f"cold start last {after.last_cold_start_s:.1f}s" in shown.stdout
    listed = runner.invoke(app, ["endpoints", "list", "--json"])
    (info,) = json.loads(listed.stdout)
    assert info["scale"]["cold_starts"] == after.cold_starts
    assert info["scale"]["median_cold_start_s"] > 0

    got = _metrics(workbench_home)
    assert got[("workbench_endpoint_cold_start_seconds_count", "")] >= 1
    assert got[("workbench_endpoint_last_cold_start_seconds", "")] == after.last_cold_start_s
    assert 0 <= got[("workbench_endpoint_idle_ratio", "")] <= 1
    assert got[("workbench_endpoint_idle_seconds_total", "")] > 0

    # Stopping the endpoint ends the activator, the model server and all under them.
    activator, server = _status(deployer)["pid"], _status(deployer)["model_server_pid"]
    deployer.stop("sleepy")
    helpers = [int(p) for n in (1, 2) for p in (tmp_path / f"m{n}" / "helpers").read_text().split()]
    assert not any(_procs.alive(p) for p in (activator, server, *helpers))

    monkeypatch.setenv("WORKBENCH_COLD_START_TIMEOUT_S", "0.2")
    deployer.up(["sleepy"])  # a fresh activator starts asleep
    listed = runner.invoke(app, ["endpoints", "list"])
    assert "sleepy  scaled to zero" in listed.stdout
    status, reply, headers = http(
        "POST",
        deployer.get("sleepy").url,
        {"instances": [[1]]},
        {"content-type": "application/json", "authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert status == 503 and headers["retry-after"].isdigit()
    assert reply == {
        "error": "endpoint sleepy: the model server did not start within 0.2s; a model that "
        "loads slower needs a higher WORKBENCH_COLD_START_TIMEOUT_S"
    }
    assert deployer.get("sleepy").state == "scaled to zero"


def test_the_activator_refuses_two_host_headers(deployer: LocalDeployer, tmp_path: Path) -> None:
    import socket

    deployer.deploy(_spec(tmp_path, 1), issue_token=False)
    row = deployer.store.get("sleepy")
    assert row is not None
    own = f"127.0.0.1:{row.port}"
    for first, second in ((own, "evil.example"), (own, own)):
        with socket.create_connection(("127.0.0.1", row.port), timeout=10) as s:
            s.sendall(
                f"GET /_workbench/status HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert _status(deployer)["endpoint"] == "sleepy"  # one Host: answered
