"""The local root: where every local run, artifact, log, registry and event lives.

Default ``.workbench/`` in the project (the nearest directory upwards holding a
``workbench.toml``, else the current directory); ``WORKBENCH_HOME`` overrides.
Any of it can be deleted: the next run rebuilds what it needs.

The root is private: it holds run logs, artifacts, the registry and endpoint
secrets, so it is created 0700 and everything in it is owner-only (0700
directories, 0600 files, or less). :meth:`LocalRoot.ensure` is the one place
that makes sure: it sets this process's umask to 077 (so the engine, MLflow,
the lineage writer and the endpoint servers create owner-only files without
each saying so) and, once per process, checks the root and repairs it with a
one-line notice. Tasks inherit the umask on purpose: what they write goes
under the root (outputs, MLflow artifacts); a task that shares a file
elsewhere sets its mode itself.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench_dsl import _env
from workbench_dsl.errors import UsageError

CONFIG_FILE = "workbench.toml"
#: The umask of every process that works in the local root: nothing for group or others.
PRIVATE_UMASK = 0o077
#: How deep the check at start looks before it decides the whole tree needs repair
#: (a 0700 directory already keeps others out of everything below it).
_CHECK_DEPTH = 2
_checked: set[Path] = set()


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
        """Create the root (0700) if needed; make this process's files owner-only; check it once."""
        os.umask(PRIVATE_UMASK)
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            why = "it is not a directory" if self.root.exists() else (e.strerror or str(e))
            raise UsageError(
                f"cannot use {self.root} as the local root: {why}; set WORKBENCH_HOME to a "
                f"directory you can write (or unset it: <project>/.workbench)"
            ) from None
        if self.root not in _checked:
            _checked.add(self.root)
            repaired = make_private(self.root)
            if repaired:
                print(
                    f"workbench: the local root {self.root} was open to other users; made "
                    f"{repaired} path(s) owner-only (directories 0700, files 0600)",
                    file=sys.stderr,
                    flush=True,
                )
        return self


def exposed(root: Path, depth: int | None = None) -> list[Path]:
    """Paths under ``root`` (itself included) that group or others may use; links are skipped.

    Args:
        root: The directory to check.
        depth: How many levels below ``root`` to look (None: all).
    """
    found = []
    if stat.S_IMODE(os.lstat(root).st_mode) & 0o077:
        found.append(root)
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for n in (*dirnames, *filenames):
            p = here / n
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
                found.append(p)
        if depth is not None and len(here.parts) - base + 1 >= depth:
            dirnames[:] = []
    return found


def make_private(root: Path) -> int:
    """Take group and other permissions off everything under ``root``; returns how many changed.

    Only the first levels are checked; when any of them is open, the whole tree is repaired.
    """
    if not exposed(root, _CHECK_DEPTH):
        return 0
    changed = 0
    for p in exposed(root):
        try:
            mode = stat.S_IMODE(os.lstat(p).st_mode)
            os.chmod(p, mode & ~0o077)
            changed += 1
        except OSError:  # gone meanwhile, or not ours: the next start says so again
            continue
    return changed


def local_root(start: Path | None = None) -> LocalRoot:
    """The local root for this process: ``$WORKBENCH_HOME`` or ``<project>/.workbench``."""
    env = os.environ.get(_env.HOME)
    if env:
        return LocalRoot(Path(env).expanduser().resolve())
    return LocalRoot(project_dir(start) / ".workbench")
