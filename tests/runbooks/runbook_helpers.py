"""Run the runbooks' commands as a user types them: `python -m workbench_dsl ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PIPELINES = Path(__file__).resolve().parent / "pipelines"


def wb(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """One `workbench` command (WORKBENCH_HOME comes from the test's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wb_json(*args: str, cwd: Path | None = None) -> Any:
    proc = wb(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def runbook(name: str) -> str:
    return (REPO / "docs" / "runbooks" / name).read_text(encoding="utf-8")
