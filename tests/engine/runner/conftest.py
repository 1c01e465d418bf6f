"""Fixtures for the task runner's tests: one warm runner per module (its worker starts once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workbench_dsl.engine.runner import TaskRunner
from workbench_dsl.paths import LocalRoot


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskRunner]:
    with TaskRunner(LocalRoot(tmp_path_factory.mktemp("root"))) as r:
        r.warmup()
        yield r
