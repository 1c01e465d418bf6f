"""A task never inherits the dashboard's token from the engine's environment: with it, code
inside the run could approve, through the dashboard, a version its own run waits on."""

import warnings
from typing import Any

import pytest
from kfp import dsl

warnings.filterwarnings("ignore", message="The default base_image")


@dsl.component
def looks_for_the_token() -> str:
    import os

    if "WORKBENCH_UI_TOKEN" in os.environ:
        raise RuntimeError("the task sees the dashboard's token")
    return "none"


@dsl.pipeline(name="snoop")
def snoop() -> None:
    looks_for_the_token()


def test_a_task_does_not_see_the_dashboard_token(
    run_kfp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_UI_TOKEN", "tok-of-the-user-shell")
    summary = run_kfp(snoop)
    assert summary.status == "SUCCEEDED", summary.failures
