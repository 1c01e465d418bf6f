"""workbench.toml: built-in defaults, overrides, and errors that name the key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench_dsl.config import BUILTIN_PROFILES, load_config, parse_config
from workbench_dsl.errors import ConfigError


def test_no_file_gives_the_built_in_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.path is None
    assert cfg.profile(None).name == "cpu-small"
    assert cfg.preset(None).name == "python"
    assert set(cfg.profiles) == set(BUILTIN_PROFILES)


def test_found_by_walking_up(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("[defaults]\nprofile = 'cpu-large'\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    cfg = load_config(deep)
    assert cfg.path == tmp_path / "workbench.toml"
    assert cfg.profile(None).name == "cpu-large"


def test_profiles_and_presets_are_parsed(tmp_path: Path) -> None:
    text = """
[profiles.gpu-1]
cpu = 8
memory = "32Gi"
accelerator = "nvidia.com/gpu"
accelerator_count = 4
node_selector = { pool = "gpu" }
tolerations = [{ key = "gpu", operator = "Exists" }]
cost_per_hour = 3

[presets.ml]
image = "python:3.11"
packages = ["numpy"]
"""
    cfg = parse_config(text, tmp_path / "workbench.toml")
    gpu = cfg.profile("gpu-1")  # a user profile replaces the built-in one of that name
    assert (gpu.cpu, gpu.memory, gpu.accelerator_count) == ("8", "32Gi", 4)
    assert gpu.node_selector == {"pool": "gpu"}
    assert gpu.tolerations[0].key == "gpu" and gpu.tolerations[0].effect is None
    assert gpu.cost_per_hour == 3.0
    assert cfg.preset("ml").packages == ("numpy",)
    assert cfg.preset("sklearn").image  # built-ins stay


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[defaults]\nprofile = 'huge'\n",
            r"workbench.toml:2: defaults.profile names unknown profile 'huge'",
        ),
        (
            "[profiles.x]\naccelerator_count = 1\n",
            r"workbench.toml:2: profiles.x sets accelerator_count without accelerator",
        ),
        (
            "[profiles.x]\ntolerations = [{ value = 'a' }]\n",
            r"workbench.toml:2: profiles.x.tolerations entries",
        ),
        ("[presets.y]\npackages = []\n", r"workbench.toml:1: presets.y needs image"),
        (
            "[engine]\nmax_parallel = 'lots'\n",
            r"workbench.toml:2: engine.max_parallel must be an integer",
        ),
        ("[engine]\nmax_parallel = true\n", r"engine.max_parallel must be an integer \(got bool\)"),
        ("profiles = 3\n", r"workbench.toml:1: profiles must be a table"),
    ],
)
def test_errors_name_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, tmp_path / "workbench.toml")


def test_unknown_profile_lists_the_known_ones() -> None:
    cfg = parse_config("[profiles.tiny]\ncpu = '100m'\n", Path("workbench.toml"))
    with pytest.raises(
        ConfigError,
        match=r"unknown compute profile 'big' \(known: cpu-large, cpu-small, gpu-1, tiny\)",
    ):
        cfg.profile("big")
