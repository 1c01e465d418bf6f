"""Drift figures on /metrics: per endpoint and feature, read back with Prometheus' own parser."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.backends.drift.drift_helpers import ENDPOINT, log_traffic, served_root
from workbench_dsl.backends.drift import report as drift_report
from workbench_dsl.telemetry.prometheus import METRICS, exposition


def _samples(root: object) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(exposition(root).decode()):  # type: ignore[arg-type]
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_drift_gauges_per_feature(workbench_home: Path) -> None:
    root, rev = served_root(workbench_home)
    drift_report._cache.clear()
    log_traffic(root, rev, 20, shift=4.0)
    families = {f.name for f in text_string_to_metric_families(exposition(root).decode())}
    assert {n for n in METRICS if "drift" in n} <= families  # declared with no figures yet
    assert "workbench_endpoint_feature_drift_psi" not in _samples(root)

    drift_report._cache.clear()
    log_traffic(root, rev, 300, shift=4.0, seed=5)
    s = _samples(root)
    key = (("endpoint", ENDPOINT), ("feature", "size"), ("revision", rev))
    colour = (("endpoint", ENDPOINT), ("feature", "colour"), ("revision", rev))
    assert s["workbench_endpoint_feature_drift_psi"][key] > 1.0
    assert s["workbench_endpoint_feature_drift_psi"][colour] < 0.2
    assert s["workbench_endpoint_feature_drift_p_value"][key] < 0.01
    assert s["workbench_endpoint_feature_drifted"] == {key: 1.0, colour: 0.0}
    ep = (("endpoint", ENDPOINT), ("revision", rev))
    assert s["workbench_endpoint_drifted_features"] == {ep: 1.0}
    assert s["workbench_endpoint_drift_instances"] == {ep: 320.0}
