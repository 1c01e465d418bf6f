"""`workbench --help` starts fast: it imports none of the heavy libraries."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys

HEAVY = ("kfp", "mlflow", "kserve", "pandas", "torch", "optuna", "kubernetes", "sklearn", "numpy")

PROBE = (
    f"HEAVY = {HEAVY!r}\n"
    + """
import sys
from workbench_dsl.cli.app import app
try:
    app(["--help"])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))
print("HEAVY:" + ",".join(heavy))
"""
)


def test_help_imports_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY:"))
    assert line == "HEAVY:", f"`workbench --help` imported {line[6:]}"


def test_every_command_group_has_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "compile" in proc.stdout


def test_help_starts_quickly() -> None:
    # CPU seconds the command spends (user + system), not wall time: on a loaded 2-core
    # host the wall clock measures the other processes as much as this one.
    times = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, "-m", "workbench_dsl", "--help"], capture_output=True, check=True
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    # The goal is 0.3 s on this machine; leave room for a slower CI host.
    assert statistics.median(times) < 0.6, times


def test_version() -> None:
    from workbench_dsl import __version__

    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == f"workbench-dsl {__version__}"
