"""Held-out pipelines for the local stand-ins, written as KFP users write them.

Each test varies what ``test_standins.py`` covers: several problems of different
kinds at once, secrets and config maps mounted as files in cache keys, secret
values a task prints in other forms than the value itself.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl, kubernetes

from workbench_dsl.engine.kube_objects import ObjectStore
from workbench_dsl.errors import UsageError


def test_preflight_lists_parameter_problems_beside_the_others(
    compile_yaml: Callable[..., Path], workbench_home: Path, tmp_path: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def first() -> None:
        pass

    @dsl.container_component
    def later(n: int) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="example/x:1", command=["no-such-prog-holdout"], args=[n])

    @dsl.pipeline(name="all-at-once")
    def p(n: int, rate: float = 0.5) -> None:
        later(n=n).after(first())

    text = compile_yaml(p).read_text()
    with pytest.raises(UsageError) as err:
        execute.start(
            text, {"bogus": 1, "rate": "fast"}, root=LocalRoot(workbench_home), from_cli=True
        )
    msg = str(err.value)
    assert "4 problems, nothing ran" in msg, msg
    assert "unknown parameter 'bogus'" in msg
    assert "parameter 'rate' expects a number" in msg
    assert "missing required parameter: n (an integer)" in msg
    assert "program 'no-such-prog-holdout' not found" in msg
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []
