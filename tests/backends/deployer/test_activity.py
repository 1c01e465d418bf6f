"""The idle meter's arithmetic, the cold start record's bound, and refused scaling settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench_dsl.backends.deployer import DeployError, DeploySpec
from workbench_dsl.backends.deployer._activity import IdleMeter, passive
from workbench_dsl.backends.deployer._store import COLD_STARTS_KEPT, EndpointStore
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.paths import LocalRoot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_share_counts_time_with_no_request_in_flight() -> None:
    clock = Clock()
    meter = IdleMeter(window_s=10, clock=clock)
    clock.now += 2.0
    meter.enter()  # two overlapping requests: busy from 1002 to 1005
    clock.now += 1.0
    meter.enter()
    clock.now += 1.0
    meter.exit()
    assert meter.in_flight == 1 and meter.idle_for() == 0.0
    clock.now += 1.0
    meter.exit()
    assert meter.idle_seconds() == pytest.approx(2.0)
    assert meter.idle_ratio() == pytest.approx(2.0 / 5.0)
    clock.now += 5.0  # 1010: the window is the meter's whole life (10 s), 3 of them busy
    assert meter.idle_for() == pytest.approx(5.0)
    assert meter.idle_ratio() == pytest.approx(0.7)
    clock.now += 20.0  # the busy seconds left the window
    assert meter.idle_ratio() == 1.0
    assert meter.idle_seconds() == pytest.approx(27.0)
    meter.enter()  # a request in flight counts while it lasts, even longer than the window
    clock.now += 30.0
    assert meter.idle_ratio() == 0.0
    meter.exit()
    assert meter.idle_ratio() == 0.0 and meter.idle_seconds() == pytest.approx(27.0)


def test_health_readiness_metrics_and_status_are_no_activity() -> None:
    for path in ("/", "/metrics", "/v2/health/ready", "/v2/models/churn/ready", "/v1/models/churn"):
        assert passive(path, "churn"), path
    work = ("/v2/models/churn/infer", "/v1/models/churn:predict", "/_workbench/routing")
    # An LLM endpoint's OpenAI routes are requests too, the model list included (its
    # model server answers it): each wakes a scaled-to-zero endpoint.
    openai = ("/openai/v1/completions", "/openai/v1/chat/completions", "/openai/v1/models")
    for path in (*work, *openai):
        assert not passive(path, "churn"), path


def test_cold_starts_kept_are_bounded_and_summarised(tmp_path: Path) -> None:
    store = EndpointStore(LocalRoot(tmp_path).ensure().runs_db)
    with store.transaction() as conn:
        store.create(conn, name="churn", port=1, protocol="v2", auth="none")
    for i in range(COLD_STARTS_KEPT + 5):
        store.add_cold_start("churn", 1.0 + i)
    store.add_cold_start("churn", 90.0, "the model server did not start within 90s")
    assert len(store.cold_starts("churn")) == COLD_STARTS_KEPT
    summary = store.cold_start_summary("churn")
    assert summary["last_cold_start_s"] == COLD_STARTS_KEPT + 5.0
    assert summary["last_cold_start_error"] == "the model server did not start within 90s"
    assert summary["cold_starts"] == COLD_STARTS_KEPT - 1


@pytest.mark.parametrize("after", [0, -5, 1.5, True])
def test_a_bad_idle_time_is_refused_before_anything_starts(tmp_path: Path, after: object) -> None:
    deployer = LocalDeployer(LocalRoot(tmp_path))
    spec = DeploySpec(
        endpoint="churn",
        model_uri="models:/churn/1",
        storage=str(tmp_path),
        min_replicas=0,
        scale_to_zero_after=after,  # type: ignore[arg-type]
    )
    with pytest.raises(DeployError, match="scale_to_zero_after must be a whole number"):
        deployer.deploy(spec)
    assert deployer.store.all() == []
