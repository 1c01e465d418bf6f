"""Editors see the real types: mypy's reveal_type on decorated steps and pipelines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SNIPPET = """
from workbench_dsl import Dataset, Output, develop, pipeline

@develop
def bare(x: int, y: str = "a") -> float:
    return 1.0

@develop(retries=1)
def configured(n: int, data: Output[Dataset]) -> None:
    pass

@pipeline
def flow(x: int = 1) -> None:
    bare(x=x)

reveal_type(bare.fn)
reveal_type(configured.fn)
reveal_type(bare(x=1))
reveal_type(flow.fn)
bare.fn("wrong")
"""


@pytest.mark.slow
def test_decorated_steps_keep_their_signature(tmp_path: Path) -> None:
    from mypy import api

    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(SNIPPET), encoding="utf-8")
    stdout, _, _ = api.run(
        [
            str(path),
            "--ignore-missing-imports",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
        ]
    )
    revealed = [line for line in stdout.splitlines() if "Revealed type" in line]
    assert "def (x: int, y: str =) -> float" in revealed[0]
    assert "def (n: int, data:" in revealed[1]
    # kfp ships no type information, so the task handle is Any to a type checker;
    # what matters is that a call is never typed as the function's own result.
    assert "float" not in revealed[2]
    assert "def (x: int =)" in revealed[3]
    # a wrong call of the plain function is caught
    assert any(
        'Argument 1 to "bare" has incompatible type "str"' in line or "incompatible type" in line
        for line in stdout.splitlines()
    ), stdout
