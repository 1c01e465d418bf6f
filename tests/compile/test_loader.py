"""Finding the pipeline in a module: one pipeline, a named one, or the outermost of nested ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from workbench_dsl.compile.loader import load_pipeline, pipeline_name
from workbench_dsl.errors import UsageError

STEPS = """
from workbench_dsl import develop, pipeline

@develop
def double(x: int) -> int:
    return 2 * x
"""


def _module(tmp_path: Path, body: str) -> str:
    path = tmp_path / "flows.py"
    path.write_text(STEPS + textwrap.dedent(body), encoding="utf-8")
    return str(path)


def test_the_outermost_of_nested_pipelines_is_chosen(tmp_path: Path) -> None:
    ref = _module(
        tmp_path,
        """
        @pipeline
        def inner(x: int = 1) -> int:
            return double(x=x).output

        @pipeline
        def outer(x: int = 2) -> int:
            return inner(x=x).output
        """,
    )
    assert pipeline_name(load_pipeline(ref)) == "outer"
    assert pipeline_name(load_pipeline(f"{ref}:inner")) == "inner"


def test_independent_pipelines_still_need_a_name(tmp_path: Path) -> None:
    ref = _module(
        tmp_path,
        """
        @pipeline
        def first(x: int = 1) -> int:
            return double(x=x).output

        @pipeline
        def second(x: int = 1) -> int:
            return double(x=x).output
        """,
    )
    with pytest.raises(UsageError, match="several pipelines"):
        load_pipeline(ref)
