"""Copies the built-in recipes and the prebuilt KFP components into the package.

The top-level ``recipes/`` and ``components/`` folders are the source of truth
(DESIGN.md: they sit beside the package, where people read and edit them). A
wheel has no "beside the package", so the build step copies them in as
``workbench_dsl/_recipes/`` and ``workbench_dsl/_components/``, where
``workbench_dsl._shipped`` looks first. MANIFEST.in puts both folders in the
sdist, so a wheel built from the sdist has them too. An editable install needs
no copy: the package finds the checkout's folders.

Everything else about the package is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent

#: source folder -> (folder inside the package, the files it ships)
SHIPPED = {
    "recipes": ("_recipes", "*.py"),
    "components": ("_components", "*.yaml"),
}


class BuildPyWithShippedFiles(build_py):
    """``build_py`` that also copies ``recipes/*.py`` and ``components/*.yaml`` into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the editable package reads the checkout's folders directly
        for source, (target, pattern) in SHIPPED.items():
            if not (HERE / source).is_dir():
                raise SystemExit(
                    f"{source}/ is missing: the package cannot ship it (see MANIFEST.in)"
                )
            dest = Path(self.build_lib) / "workbench_dsl" / target
            shutil.rmtree(dest, ignore_errors=True)  # a deleted recipe must not linger in build/
            dest.mkdir(parents=True)
            for path in sorted((HERE / source).glob(pattern)):
                shutil.copyfile(path, dest / path.name)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
