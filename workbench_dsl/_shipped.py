"""Files shipped with the package: the built-in recipes and the prebuilt KFP components.

Their source of truth is the top-level ``recipes/`` and ``components/`` folders
of the project. A wheel (or sdist) build copies them into the package as
``_recipes/`` and ``_components/`` (setup.py); a checkout or an editable
install has them beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent

#: folder name in a checkout -> folder name inside an installed package
_INSIDE = {"recipes": "_recipes", "components": "_components"}


def shipped_dir(name: str) -> Path | None:
    """Where the shipped ``recipes`` or ``components`` are, or None when neither place has them.

    The installed copy wins; the checkout's folder counts only next to the
    project's own pyproject.toml, so an unrelated ``site-packages/recipes``
    is never mistaken for ours.
    """
    inside = _PACKAGE / _INSIDE[name]
    if inside.is_dir():
        return inside
    checkout = _PACKAGE.parent
    beside = checkout / name
    if beside.is_dir() and (checkout / "pyproject.toml").is_file():
        return beside
    return None
