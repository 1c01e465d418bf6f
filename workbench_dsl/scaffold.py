"""``workbench init``: the files of a new project, written from templates shipped in the package.

Like ``cargo new`` or ``kedro new``: a ``workbench.toml``, a pipeline module
under ``pipelines/``, its test, a ``.gitignore`` for the local root and a
README with the next commands. Nothing that exists is ever overwritten: every
target is checked before the first file is written.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from workbench_dsl.errors import UsageError

TEMPLATES = Path(__file__).resolve().parent / "_templates" / "init"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Project:
    """What ``init`` writes: the project's name, its module name and the files by path."""

    name: str
    module: str
    files: dict[Path, str]


def _names(name: str) -> tuple[str, str]:
    """The project's name (model, endpoint, pipeline: ``my-project``) and module (``my_project``)."""
    if not _NAME.match(name):
        raise UsageError(
            f"project name {name!r} must start with a letter and hold only letters, digits, "
            f"'-' and '_'; pass --name NAME"
        )
    kebab = name.lower().replace("_", "-")
    return kebab, kebab.replace("-", "_")


def plan(directory: Path, name: str | None = None) -> Project:
    """The files ``init`` would write into ``directory`` (nothing is written)."""
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory; choose another directory")
    kebab, module = _names(directory.name if name is None else name)
    values = {"name": kebab, "module": module}
    targets = {
        "workbench.toml.tmpl": "workbench.toml",
        "pipeline.py.tmpl": f"pipelines/{module}.py",
        "test_pipeline.py.tmpl": f"tests/test_{module}.py",
        "conftest.py.tmpl": "conftest.py",
        "gitignore.tmpl": ".gitignore",
        "README.md.tmpl": "README.md",
    }
    files = {}
    for template, target in targets.items():
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        files[directory / target] = string.Template(text).substitute(values)
    return Project(kebab, module, files)


def write(project: Project) -> list[Path]:
    """Write the project's files; refuse before writing any if one of them exists."""
    for path in project.files:
        if path.exists() or path.is_symlink():
            raise UsageError(
                f"{path} exists: `workbench init` never overwrites a file; "
                f"choose another directory or move it away"
            )
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                raise UsageError(
                    f"{parent} exists and is not a directory; choose another directory"
                )
    written: list[Path] = []
    try:
        for path, text in project.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as f:  # "x": never replace a file made meanwhile
                written.append(path)
                f.write(text)
    except OSError as e:
        for path in written:  # nothing half-written: take back what this call wrote
            path.unlink(missing_ok=True)
        root = min(project.files, key=lambda p: len(p.parts)).parent
        raise UsageError(
            f"cannot create the project in {root}: {e.strerror or e}; choose another directory"
        ) from None
    return written
