"""Endpoints over HTTP against real local KServe servers: the split, traffic numbers from the
servers' own /metrics, and Promote / Rollback doing what ``workbench endpoints`` does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import PORT, TOKEN, csrf_of, make_client

from workbench_dsl.backends.deployer import DeploySpec
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.paths import LocalRoot
from workbench_dsl.ui.metrics import Counts, parse, quantile

pytestmark = pytest.mark.slow

PREDICTOR = """
class Echo:
    def load(self, path):
        self.answer = {answer}

    def predict(self, instances):
        if instances == [[-1]]:
            raise ValueError("negative")
        return [self.answer for _ in instances]
"""


@pytest.fixture
def deployer(workbench_home: Path, tmp_path: Path) -> Iterator[LocalDeployer]:
    d = LocalDeployer(LocalRoot(workbench_home))
    try:
        yield d
    finally:
        d.stop_all()


def _deploy(d: LocalDeployer, tmp: Path, n: int, canary: int = 50) -> str:
    storage = tmp / f"m{n}"
    storage.mkdir(exist_ok=True)
    spec = DeploySpec(
        endpoint="echo",
        model_uri=f"models:/echo/{n}",
        storage=str(storage),
        flavor="pyfunc",
        canary_percent=canary,
        protocol="v1",
        predictor_source=PREDICTOR.format(answer=n),
        predictor_name="Echo",
        run_id=f"run{n:09d}",
    )
    return d.deploy(spec).revision


def _post(c: Any, path: str) -> Any:
    return c.post(path, data={"csrf": csrf_of(c)}, headers={"accept": "application/json"})


def test_traffic_canary_promote_and_rollback(
    deployer: LocalDeployer, workbench_home: Path, tmp_path: Path
) -> None:
    first = _deploy(deployer, tmp_path, 1)
    second = _deploy(deployer, tmp_path, 2)
    c = make_client(workbench_home)
    c.cookies.set(f"workbench_ui_token_{PORT}", TOKEN)
    c.get("/endpoints")  # a first reading of the server's counters
    for _ in range(6):
        deployer.predict("echo", {"instances": [[1]]})
    deployer.predict("echo", {"instances": [[-1]]})
    deployer.predict("echo", {"instances": [[-1]]})
    html = c.get("/endpoints/echo").text
    assert f'{first}</b> 50%, canary <b class="mono">{second}</b> 50%' in html
    assert ">Promote canary</button>" in html and ">Roll back</button>" in html
    stats = c.app.state.ui.metrics.summary("echo")  # type: ignore[attr-defined]
    assert stats["total"]["requests"] == 8
    assert stats["recent"]["requests"] == 8 and stats["recent"]["rate_per_s"] > 0
    assert stats["total"]["error_rate"] == pytest.approx(2 / 8)
    assert set(stats["revisions"]) == {first, second}
    assert ">8</div>" in html and "25.0%" in html  # requests since start, error rate
    assert 'href="/runs/run000000002"' in html
    # Roll back: the canary goes, the first revision takes everything again.
    body = _post(c, "/endpoints/echo/rollback").json()
    assert body["ok"] and body["endpoint"]["canary"] is None
    info = deployer.get("echo")
    assert (info.stable, info.canary) == (first, None)
    assert all(deployer.predict("echo", {"instances": [[1]]})[2] == first for _ in range(4))
    assert "no canary to roll back" in _post(c, "/endpoints/echo/rollback").json()["message"]
    # A new canary, promoted from the page.
    third = _deploy(deployer, tmp_path, 3, canary=10)
    r = c.post("/endpoints/echo/promote", data={"csrf": csrf_of(c), "next": "/endpoints/echo"})
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert f"echo: {third} now takes all traffic" in page
    info = deployer.get("echo")
    assert (info.stable, info.canary) == (third, None)
    assert deployer.predict("echo", {"instances": [[1]]})[1] == {"predictions": [3]}
    listing = c.get("/endpoints").text
    assert "running" in listing and third in listing


def test_metrics_text_and_quantiles() -> None:
    text = (
        'workbench_endpoint_requests_total{endpoint="e",outcome="ok",revision="r1"} 90.0\n'
        'workbench_endpoint_requests_total{endpoint="e",outcome="error",revision="r1"} 10.0\n'
        'workbench_endpoint_requests_total{endpoint="other",outcome="ok",revision="x"} 5.0\n'
        'workbench_endpoint_predict_seconds_bucket{endpoint="e",le="0.01",revision="r1"} 50.0\n'
        'workbench_endpoint_predict_seconds_bucket{endpoint="e",le="0.1",revision="r1"} 100.0\n'
        'workbench_endpoint_predict_seconds_bucket{endpoint="e",le="+Inf",revision="r1"} 100.0\n'
        'workbench_endpoint_predict_seconds_count{endpoint="e",revision="r1"} 100.0\n'
        'workbench_endpoint_predict_seconds_sum{endpoint="e",revision="r1"} 2.0\n'
    )
    counts = parse(text, "e")
    assert set(counts) == {"r1"}
    r1 = counts["r1"]
    assert (r1.total, r1.failed, r1.latency_count) == (100.0, 10.0, 100.0)
    # Half the requests took up to 10 ms, all up to 100 ms: p95 is 91 ms, as Prometheus says.
    assert quantile(0.95, r1.buckets) == pytest.approx(0.091)
    assert quantile(0.5, r1.buckets) == pytest.approx(0.01)
    assert quantile(0.5, {}) is None
    assert Counts().total == 0
