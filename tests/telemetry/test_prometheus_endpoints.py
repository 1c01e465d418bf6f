"""Endpoint metrics in the exposition, from a real local KServe server's own /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from workbench_dsl.backends.deployer import DeploySpec
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.paths import LocalRoot
from workbench_dsl.telemetry.prometheus import exposition

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
def deployer(workbench_home: Path) -> Iterator[LocalDeployer]:
    d = LocalDeployer(LocalRoot(workbench_home))
    try:
        yield d
    finally:
        d.stop_all()


def _deploy(d: LocalDeployer, tmp: Path, n: int) -> str:
    storage = tmp / f"m{n}"
    storage.mkdir(exist_ok=True)
    spec = DeploySpec(
        endpoint="echo",
        model_uri=f"models:/echo/{n}",
        storage=str(storage),
        flavor="pyfunc",
        canary_percent=25,
        protocol="v1",
        predictor_source=PREDICTOR.format(answer=n),
        predictor_name="Echo",
        run_id=f"run{n:09d}",
    )
    return d.deploy(spec).revision


def test_requests_errors_latency_and_canary_share(
    deployer: LocalDeployer, workbench_home: Path, tmp_path: Path
) -> None:
    _deploy(deployer, tmp_path, 1)
    _deploy(deployer, tmp_path, 2)
    for _ in range(5):
        deployer.predict("echo", {"instances": [[1]]})
    deployer.predict("echo", {"instances": [[-1]]})
    fams = {
        f.name: f
        for f in text_string_to_metric_families(exposition(LocalRoot(workbench_home)).decode())
    }
    (up,) = fams["workbench_endpoint_up"].samples
    assert (up.labels, up.value) == ({"endpoint": "echo"}, 1)
    (canary,) = fams["workbench_endpoint_canary_ratio"].samples
    assert canary.value == 0.25
    reqs = fams["workbench_endpoint_requests"].samples
    assert {s.labels["endpoint"] for s in reqs} == {"echo"}
    by_outcome: dict[str, float] = {}
    for s in reqs:
        by_outcome[s.labels["outcome"]] = by_outcome.get(s.labels["outcome"], 0) + s.value
    assert by_outcome.get("ok") == 5 and sum(by_outcome.values()) == 6
    counts = [
        s.value
        for s in fams["workbench_endpoint_predict_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert sum(counts) >= 5
    # An always-on endpoint: one model server, at its profile's price (none given: 0),
    # and busy for a share of its life that its own meter measured.
    assert [s.value for s in fams["workbench_endpoint_replicas"].samples] == [1]
    assert [s.value for s in fams["workbench_endpoint_cost_dollars_per_hour"].samples] == [0]
    (idle,) = fams["workbench_endpoint_idle_ratio"].samples
    assert idle.labels == {"endpoint": "echo"} and 0 <= idle.value < 1
    deployer.stop_all()
    fams = {
        f.name: f
        for f in text_string_to_metric_families(exposition(LocalRoot(workbench_home)).decode())
    }
    assert [s.value for s in fams["workbench_endpoint_up"].samples] == [0]
    assert [s.value for s in fams["workbench_endpoint_replicas"].samples] == [0]
    assert fams["workbench_endpoint_idle_ratio"].samples == []
