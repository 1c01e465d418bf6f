"""The local root: where every local run, artifact, log, registry and event lives.

Default ``.workbench/`` in the project (the nearest directory upwards holding a
``workbench.toml``, else the current directory); ``WORKBENCH_HOME`` overrides.
Any of it can be deleted: the next run rebuilds what it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workbench_dsl import _env

CONFIG_FILE = "workbench.toml"


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``workbench.toml`` at or above ``start`` (default: the cwd)."""
    here = (start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for d in (here, *here.parents):
        candidate = d / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def project_dir(start: Path | None = None) -> Path:
    """The project directory: where ``workbench.toml`` is, else ``start`` or the cwd."""
    cfg = find_config(start)
    if cfg is not None:
        return cfg.parent
    return (start or Path.cwd()).resolve()


@dataclass(frozen=True)
class LocalRoot:
    """Paths under the local root; nothing is created until asked."""

    root: Path

    @property
    def runs_db(self) -> Path:
        return self.root / "runs.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lineage_events(self) -> Path:
        return self.root / "lineage" / "events.jsonl"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints"

    @property
    def envs(self) -> Path:
        """Package layers installed for tasks whose requirements the host lacks."""
        return self.root / "envs"

    def ensure(self) -> LocalRoot:
        self.root.mkdir(parents=True, exist_ok=True)
        return self


def local_root(start: Path | None = None) -> LocalRoot:
    """The local root for this process: ``$WORKBENCH_HOME`` or ``<project>/.workbench``."""
    env = os.environ.get(_env.HOME)
    if env:
        return LocalRoot(Path(env).expanduser().resolve())
    return LocalRoot(project_dir(start) / ".workbench")
