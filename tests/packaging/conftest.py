"""The package as users get it: the sdist, the wheel built from it, a fresh venv with the wheel.

Built once per session (``make wheel-check``). The venv is made from the base
interpreter, without system site packages, and every command runs with
PYTHONPATH and WORKBENCH_* removed and its working directory outside the
checkout, so nothing of the checkout or its editable install is visible.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wheel_env import REPO, Dist, Installed


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dist(sdist, wheel)


@pytest.fixture(scope="session")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A new venv with the wheel and its dependencies, pinned by constraints.txt as CI pins .venv.

    ``--no-compile`` leaves byte-compiling to the first import (as it happens
    for any user): it saves about a third of the install time here.
    """
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    start = time.perf_counter()
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            "--disable-pip-version-check",
            "-c",
            str(REPO / "constraints.txt"),
            str(dist.wheel),
            "pytest",
        ],
        cwd=root,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    took = time.perf_counter() - start
    home = root / "home"
    home.mkdir()
    return Installed(venv, home, took)


@pytest.fixture
def stop_endpoints(installed: Installed) -> Iterator[Callable[[Path], None]]:
    """Call with a local root: its endpoints are stopped when the test ends."""
    roots: list[Path] = []
    yield roots.append
    for root in roots:
        installed.run("workbench", "endpoints", "stop", "--all", WORKBENCH_HOME=str(root))
