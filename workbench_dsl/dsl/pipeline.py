"""``@pipeline``: trace a function of step calls into a KFP pipeline.

The function is traced with KFP's own placeholder channels when the pipeline is
first needed (compiling, running, or calling it inside another pipeline), not at
import, so a module with a broken pipeline still imports and the error names
the line of the bad call. Parameters come from the signature and its defaults.
See https://www.kubeflow.org/docs/components/pipelines/user-guides/core-functions/
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, overload

from workbench_dsl.dsl._where import caller_location, function_location, traceback_location
from workbench_dsl.errors import PipelineDefinitionError, WorkbenchError

if TYPE_CHECKING:
    from kfp.dsl.graph_component import GraphComponent
    from kfp.dsl.pipeline_task import PipelineTask

P = ParamSpec("P")

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Pipeline(Generic[P]):
    """A traced pipeline: compile it, run it, or call it inside another pipeline."""

    #: Lets the compile layer find pipelines without importing the DSL.
    __workbench_pipeline__ = True

    def __init__(self, fn: Callable[P, Any], name: str | None, description: str | None) -> None:
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-").lower()
        self.description = description
        self._component: GraphComponent | None = None
        functools.update_wrapper(self, fn)
        if not _NAME.match(self.name):
            raise PipelineDefinitionError(
                f"{function_location(fn)}: pipeline name {self.name!r} must be lowercase "
                f"letters, digits and '-' (for example 'churn-train')"
            )

    def __repr__(self) -> str:
        return f"<pipeline {self.name} at {function_location(self.fn)}>"

    @property
    def component(self) -> GraphComponent:
        """The KFP pipeline (a GraphComponent), traced once on first use."""
        if self._component is None:
            self._component = _trace(self.fn, self.name, self.description)
        return self._component

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineTask:
        """Use this pipeline as a step of another pipeline."""
        from kfp.dsl import pipeline_context

        where = caller_location()
        if pipeline_context.Pipeline.get_default_pipeline() is None:
            raise PipelineDefinitionError(
                f"{where}: pipeline {self.name}() was called outside a @pipeline; run it "
                f"with `workbench run` or workbench_dsl.run({self.fn.__name__})"
            )
        if args:
            raise PipelineDefinitionError(
                f"{where}: {self.name}() takes keyword arguments only (got {len(args)} positional)"
            )
        from workbench_dsl.dsl.step import _make_task, check_arguments

        component = self.component
        check_arguments(self.name, component, kwargs, where)
        return _make_task(self.name, component, kwargs, where)


def _trace(fn: Callable[..., Any], name: str, description: str | None) -> GraphComponent:
    from kfp import dsl
    from kfp.dsl import pipeline_context

    # A pipeline used inside another is traced lazily, i.e. while the outer one's
    # tracing context is open; KFP allows one context at a time, so set the outer
    # aside while the inner is traced on its own, as KFP would have at import.
    from workbench_dsl.dsl.step import resolve_annotations

    resolve_annotations(fn)
    outer = pipeline_context.Pipeline._default_pipeline
    pipeline_context.Pipeline._default_pipeline = None
    try:
        return dsl.pipeline(fn, name=name, description=description)  # type: ignore[no-any-return]
    except WorkbenchError:
        raise
    except Exception as e:  # user code or KFP rejected the definition while tracing
        where = traceback_location(e.__traceback__) or function_location(fn)
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not isinstance(e, TypeError | ValueError) or type(e).__module__ != "builtins":
            detail = f"{type(e).__name__}: {detail}"
        raise PipelineDefinitionError(f"{where}: pipeline {name!r}: {detail}") from e
    finally:
        pipeline_context.Pipeline._default_pipeline = outer


@overload
def pipeline(fn: Callable[P, Any], /) -> Pipeline[P]: ...


@overload
def pipeline(
    fn: None = None, /, *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[P, Any]], Pipeline[P]]: ...


def pipeline(
    fn: Callable[P, Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Pipeline[P] | Callable[[Callable[P, Any]], Pipeline[P]]:
    """Make a function of step calls a pipeline.

    Args:
        name: The pipeline's name (default: the function's, with '-' for '_').
        description: Shown in KFP and in ``workbench runs``; default: the docstring.
    """

    def wrap(f: Callable[P, Any]) -> Pipeline[P]:
        return Pipeline(f, name, description)

    return wrap(fn) if fn is not None else wrap
