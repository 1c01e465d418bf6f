"""What the packaging tests share: the built sdist and wheel, and a fresh venv holding the wheel."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding the wheel (and pytest, for the tests ``workbench init`` writes)."""

    venv: Path
    home: Path  # a scratch directory outside the checkout
    install_s: float

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
            and not k.startswith("WORKBENCH_")
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env.update(extra)
        return env

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 600, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv (``workbench ...``, ``python ...``) outside the checkout."""
        exe = self.venv / "bin" / args[0]
        return subprocess.run(
            [str(exe), *args[1:]],
            cwd=cwd or self.home,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
