"""The endpoint's compute profile's price travels from workbench.toml to the deployment."""

from __future__ import annotations

from pathlib import Path

from workbench_dsl import serve
from workbench_dsl.config import parse_config

TOML = """
[profiles.serving]
cpu = "2"
memory = "4Gi"
cost_per_hour = 0.35
"""


def test_the_profile_cost_per_hour_reaches_the_deploy_spec(tmp_path: Path) -> None:
    config = parse_config(TOML, tmp_path / "workbench.toml")

    @serve(endpoint="churn", profile="serving", min_replicas=0)
    def churn(model, instances):  # type: ignore[no-untyped-def]
        return model.predict(instances)

    settings = churn.launcher_settings(config)
    spec = settings.deploy_spec("models:/churn/1", str(tmp_path), "sklearn")
    assert spec.cost_per_hour == 0.35
    assert (spec.min_replicas, spec.scale_to_zero_after) == (0, 300)
    default = serve(endpoint="other")(churn.fn).launcher_settings(parse_config("", tmp_path))
    assert default.deploy_spec("m", "s", "sklearn").cost_per_hour == 0.05  # cpu-small's
