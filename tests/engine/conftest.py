"""Fixtures for the engine's tests: compile a KFP pipeline in the test, run it through the engine."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def compile_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Compile a ``@dsl.pipeline`` with KFP's own compiler; returns the YAML path."""

    def compile_(pipeline: Any, name: str | None = None) -> Path:
        from kfp import compiler

        path = tmp_path / f"{name or pipeline.name}.yaml"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiler.Compiler().compile(pipeline, str(path))
        return path

    return compile_


@pytest.fixture
def run_kfp(compile_yaml: Callable[..., Path], workbench_home: Path) -> Callable[..., Any]:
    """Compile and run a pipeline through the real scheduler and task runner; returns the summary."""

    def run(pipeline: Any, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        from workbench_dsl.engine import execute
        from workbench_dsl.paths import LocalRoot

        path = compile_yaml(pipeline)
        return execute.start(
            path.read_text(), params or {}, root=LocalRoot(workbench_home), **kwargs
        )

    return run


def task(summary: Any, name: str) -> dict[str, Any]:
    """The summary's entry for a task, by qualified name or its last part."""
    for t in summary.tasks:
        if t["name"] == name or t["name"].rsplit("/", 1)[-1] == name:
            return dict(t)
    raise KeyError(f"{name} not in {[t['name'] for t in summary.tasks]}")
