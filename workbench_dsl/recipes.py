"""Recipes: ordinary pipeline modules that run a whole lifecycle with one command.

A recipe is a ``.py`` file with one ``@pipeline`` in a ``recipes/`` folder: the
project's own (``<project>/recipes/``, found from the current directory) and
the built-in ones shipped with this package (``workbench_dsl._shipped``). A
project recipe with the name of a built-in one replaces it, so copying a
built-in recipe into the project and editing it is how you customise it. The name is the file's stem with ``-``
for ``_`` (``train_deploy.py`` is ``train-deploy``); the description is the
module docstring.

A recipe that closes a loop rather than running once (``retrain-on-drift``)
declares a module-level ``SETUP = TriggerSetup(...)``: ``workbench recipe run``
then makes sure the recipe it builds on has run, and adds a trigger that runs
the pipeline when its event happens.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from workbench_dsl._shipped import shipped_dir
from workbench_dsl.errors import UsageError
from workbench_dsl.paths import project_dir


@dataclass(frozen=True)
class TriggerSetup:
    """How ``workbench recipe run`` sets a trigger-driven recipe up instead of running it once.

    Args:
        on: The trigger's event (``workbench trigger add --on``), e.g. ``drift:churn``.
        requires_endpoint: The endpoint the pipeline rolls out to; when it is not
            recorded yet, ``requires_recipe`` runs first to create it.
        requires_recipe: The recipe that creates ``requires_endpoint``.
        trigger: The trigger's name (one per recipe: running the setup again keeps it).
        event_param: The pipeline input that receives the event's value.
        options: More ``workbench trigger add`` options for the event (e.g. a threshold).
    """

    on: str
    requires_endpoint: str
    requires_recipe: str
    trigger: str
    event_param: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One recipe module."""

    name: str
    path: Path
    doc: str
    builtin: bool

    @property
    def summary(self) -> str:
        """The docstring's first line."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


def builtin_dir() -> Path | None:
    """The built-in recipes: inside the installed package, or ``recipes/`` of a checkout."""
    return shipped_dir("recipes")


def _read(path: Path, builtin: bool) -> Recipe:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except SyntaxError as e:
        doc = f"(does not parse: line {e.lineno}: {e.msg})"
    return Recipe(path.stem.replace("_", "-"), path, doc, builtin)


def find_recipes(start: Path | None = None) -> dict[str, Recipe]:
    """Every recipe by name; the project's replace built-in ones of the same name."""
    found: dict[str, Recipe] = {}
    builtin = builtin_dir()
    project = project_dir(start) / "recipes"
    folders = [(builtin, True)] if builtin else []
    if project.is_dir() and (builtin is None or project.resolve() != builtin.resolve()):
        folders.append((project, False))
    for folder, is_builtin in folders:
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                recipe = _read(path, is_builtin)
                found[recipe.name] = recipe
    return dict(sorted(found.items()))


def get_recipe(name: str, start: Path | None = None) -> Recipe:
    """The recipe called ``name`` (``train-deploy`` or ``train_deploy``)."""
    recipes = find_recipes(start)
    key = name.replace("_", "-")
    if key not in recipes:
        known = ", ".join(recipes) or "none"
        raise UsageError(
            f"unknown recipe {name!r} (known: {known}); `workbench recipe list` shows them"
        )
    return recipes[key]
