"""One type per compute concept, carried from decorator to launcher as JSON and read back strictly."""

from __future__ import annotations

import pytest

from workbench_dsl import compute
from workbench_dsl.backends.trainer import base
from workbench_dsl.config import BUILTIN_PROFILES, Toleration


def test_the_decorators_the_launchers_and_the_backends_share_one_type() -> None:
    assert base.Toleration is compute.Toleration is Toleration
    assert base.Resources is compute.Resources


def test_cluster_settings_round_trip_and_refuse_what_they_do_not_know() -> None:
    gpu = BUILTIN_PROFILES["gpu-1"]
    settings = compute.ClusterSettings.for_profile(gpu, image="img:1", namespace="ml")
    back = compute.ClusterSettings.from_json(settings.to_json())
    assert back == settings
    requests, limits = back.resources.requests_and_limits()
    assert requests == {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"}
    assert limits == {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"}
    assert settings.to_json()["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    with pytest.raises(ValueError, match="unknown field"):
        compute.ClusterSettings.from_json({**settings.to_json(), "gpu": 2})
    with pytest.raises(ValueError, match="unknown field"):
        compute.ClusterSettings.from_json({"tolerations": [{"key": "a", "op": "Exists"}]})
