"""``@develop``: a general step (data prep, features, evaluation) as a KFP lightweight component.

Inputs and outputs are typed exactly as in KFP (parameters by annotation,
``Input[Dataset]``, ``Output[Model]``, return values, ``NamedTuple`` returns);
the compiled component is KFP's own, on the step's preset image, so it behaves
the same under the local engine and on a cluster.
See https://www.kubeflow.org/docs/components/pipelines/user-guides/components/lightweight-python-components/
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from workbench_dsl.dsl._options import StepOptions
from workbench_dsl.dsl.step import Step

P = ParamSpec("P")
R = TypeVar("R")


@overload
def develop(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def develop(
    fn: None = None,
    /,
    *,
    preset: str | None = None,
    profile: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def develop(
    fn: Callable[P, R] | None = None,
    /,
    *,
    preset: str | None = None,
    profile: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a function a pipeline step.

    Args:
        preset: Base image and packages, by name from ``workbench.toml``.
        profile: Compute (CPU, memory, accelerator, scheduling), by name.
        cache: Reuse a previous result when the inputs are the same.
        retries: How many times to retry a failed attempt.
        retry_backoff: Wait before the first retry (seconds or ``"30s"``), doubling after.
        timeout: Fail an attempt that runs longer (seconds or ``"10m"``).
        env: Environment variables for the step.
    """

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        options = StepOptions.build(
            getattr(f, "__name__", "step"),
            preset=preset,
            profile=profile,
            cache=cache,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            env=env,
        )
        return Step(f, options)

    return wrap(fn) if fn is not None else wrap
