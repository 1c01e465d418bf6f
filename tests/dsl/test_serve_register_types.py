"""Editors see the real types of ``@register`` and ``@serve`` steps (mypy's reveal_type)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SNIPPET = """
from workbench_dsl import Input, Model, deploy, register, serve

@register(model="churn", gate={"accuracy": ">= 0.9"})
def evaluate(model: Input[Model], threshold: float = 0.5) -> dict:
    return {"accuracy": 1.0}

@serve(endpoint="churn")
def predict(model: object, instances: list) -> list:
    return instances

reveal_type(evaluate)
reveal_type(evaluate.fn)
reveal_type(predict.fn)
reveal_type(deploy)
evaluate.fn(None, "high")
"""


@pytest.mark.slow
def test_register_and_serve_keep_the_signature(tmp_path: Path) -> None:
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
    revealed = [
        line.split("Revealed type is ")[1]
        for line in stdout.splitlines()
        if "Revealed type" in line
    ]
    assert (
        revealed[0]
        == '"workbench_dsl.dsl.register.RegisterStep[[model: Any, threshold: float =], dict[Any, Any]]"'
    )
    assert revealed[1] == '"def (model: Any, threshold: float =) -> dict[Any, Any]"'
    assert revealed[2] == '"def (model: object, instances: list[Any]) -> list[Any]"'
    assert revealed[3].startswith('"workbench_dsl.dsl.serve.ServeStep[')
    assert 'Argument 2 has incompatible type "str"; expected "float"' in stdout, stdout
