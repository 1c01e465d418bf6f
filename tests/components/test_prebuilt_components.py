"""The prebuilt launcher components in components/ are current and loadable by plain KFP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def _sources() -> list[Path]:
    return sorted((COMPONENTS / "src").glob("*.py"))


def test_every_source_has_a_compiled_yaml() -> None:
    missing = [s.stem for s in _sources() if not (COMPONENTS / f"{s.stem}.yaml").exists()]
    assert not missing, f"run `python components/build.py` (missing: {missing})"


def test_compiled_yaml_is_not_stale() -> None:
    proc = subprocess.run(
        [sys.executable, str(COMPONENTS / "build.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", sorted(COMPONENTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_plain_kfp_loads_it(path: Path) -> None:
    from kfp import components

    component = components.load_component_from_file(str(path))
    assert component.component_spec.implementation.container is not None
