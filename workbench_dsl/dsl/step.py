"""A decorated step: the user's function, its KFP component, and its options.

Every decorator (``@develop``, ``@train``, ``@sweep``, ``@register``,
``@serve``) returns a :class:`Step`. Its plain function stays at ``.fn`` for
unit tests; calling the step inside a ``@pipeline`` returns a KFP
``PipelineTask`` (always: a call never changes meaning with context, and
calling it anywhere else is an error that says what to do instead).

The component is built on first use, not at decoration, so a module with a
misconfigured step still imports and its error names the step's ``def`` line.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar

from workbench_dsl import _env
from workbench_dsl.config import Config, Profile, load_config
from workbench_dsl.dsl._options import StepOptions
from workbench_dsl.dsl._where import caller_location, function_location
from workbench_dsl.errors import ConfigError, PipelineDefinitionError

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent
    from kfp.dsl.pipeline_task import PipelineTask

P = ParamSpec("P")
R = TypeVar("R")

_CONFIGS: dict[Path, Config] = {}


def resolve_annotations(fn: Callable[..., Any]) -> None:
    """Evaluate string annotations in place, so KFP sees types.

    ``from __future__ import annotations`` turns every annotation into a string,
    which KFP's component factory cannot read. The embedded source is unaffected:
    it runs without that import and evaluates its annotations as usual.
    """
    annotations = getattr(fn, "__annotations__", None) or {}
    if not any(isinstance(v, str) for v in annotations.values()):
        return
    import typing

    from kfp import dsl

    namespace = {**vars(typing), **vars(dsl), **getattr(fn, "__globals__", {})}
    try:
        hints = typing.get_type_hints(fn, globalns=namespace, include_extras=True)
    except Exception as e:
        raise PipelineDefinitionError(
            f"{function_location(fn)}: {fn.__name__}: an annotation cannot be evaluated "
            f"({type(e).__name__}: {e}); import the names it uses at module level"
        ) from None
    resolved = {k: hints.get(k, v) for k, v in annotations.items()}
    if resolved.get("return") is type(None):
        resolved["return"] = None  # KFP reads a bare None as "no outputs"
    fn.__annotations__ = resolved


def config_for(fn: Callable[..., Any]) -> Config:
    """The ``workbench.toml`` that governs a function: nearest to its source file."""
    code = getattr(fn, "__code__", None)
    start = Path(code.co_filename).resolve().parent if code else Path.cwd()
    if start not in _CONFIGS:
        _CONFIGS[start] = load_config(start)
    return _CONFIGS[start]


class Step(Generic[P, R]):
    """A pipeline step built from a Python function.

    Attributes:
        fn: The undecorated function, callable as plain Python in tests.
        options: The validated shared options (profile, preset, cache, ...).
        kind: Which decorator made it (``develop``, ``train``, ...).
    """

    kind: ClassVar[str] = "develop"

    def __init__(self, fn: Callable[P, R], options: StepOptions) -> None:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise PipelineDefinitionError(
                f"@{self.kind} decorates a function defined with def (got {fn!r})"
            )
        self.fn: Callable[P, R] = fn
        self.options = options
        self.name: str = fn.__name__
        self._component: BaseComponent | None = None
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<{self.kind} step {self.name} at {function_location(self.fn)}>"

    # -- building -----------------------------------------------------------------

    @property
    def config(self) -> Config:
        return config_for(self.fn)

    @property
    def component(self) -> BaseComponent:
        """The KFP component this step compiles to (built once, on first use)."""
        if self._component is None:
            try:
                self._component = self._build_component(self.config)
            except ConfigError as e:
                raise ConfigError(f"{function_location(self.fn)}: {self.name}: {e}") from None
        return self._component

    def _build_component(self, config: Config) -> BaseComponent:
        """Build the KFP component; each step kind overrides this."""
        from kfp import dsl

        preset = config.preset(self.options.preset)
        resolve_annotations(self.fn)
        return dsl.component(
            self.fn,
            base_image=preset.image,
            packages_to_install=list(preset.packages) or None,
            pip_index_urls=list(preset.pip_index_urls) or None,
        )

    def _pod_profile(self, profile: Profile) -> Profile:
        """The compute of this step's own pod; launchers whose work runs elsewhere shrink it."""
        return profile

    # -- calling inside a pipeline ---------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineTask:
        where = caller_location()
        if args:
            raise PipelineDefinitionError(
                f"{where}: {self.name}() takes keyword arguments only "
                f"(got {len(args)} positional); write {self.name}(name=value, ...)"
            )
        from kfp.dsl import pipeline_context

        if pipeline_context.Pipeline.get_default_pipeline() is None:
            raise PipelineDefinitionError(
                f"{where}: {self.name}() was called outside a @pipeline; call "
                f"{self.name}.fn(...) to run the plain function, or run the pipeline "
                f"with `workbench run`"
            )
        component = self.component
        check_arguments(self.name, component, kwargs, where)
        task = _make_task(self.name, component, kwargs, where)
        from workbench_dsl.dsl._lowering import apply_options

        try:
            profile = self.config.profile(self.options.profile)
        except ConfigError as e:
            raise ConfigError(f"{function_location(self.fn)}: {self.name}: {e}") from None
        apply_options(task, self.options, self._pod_profile(profile))
        if self.kind != "develop":
            # A launcher reports its own lineage on a cluster, where no engine names the
            # pipeline and task for it (locally the engine's values replace these).
            context = pipeline_context.Pipeline.get_default_pipeline()
            task.set_env_variable(_env.PIPELINE, str(context.name))
            task.set_env_variable(_env.TASK, str(task.name))
        return task


def _make_task(
    name: str, component: BaseComponent, kwargs: dict[str, Any], where: str
) -> PipelineTask:
    from kfp.dsl.types.type_utils import InconsistentTypeException

    try:
        return component(**kwargs)  # type: ignore[no-any-return]
    except InconsistentTypeException as e:
        raise PipelineDefinitionError(f"{where}: {name}(): {e}") from None
    except (TypeError, ValueError) as e:
        raise PipelineDefinitionError(f"{where}: {name}(): {e}") from None


def _short_type(type_name: Any) -> str:
    """``system.Dataset@0.0.1`` -> ``Dataset``; ``Integer`` stays."""
    s = str(type_name)
    if s.startswith("system."):
        s = s[len("system.") :]
    return s.split("@", 1)[0]


def _describe_channel(channel: Any) -> str:
    task = getattr(channel, "task_name", None)
    if task:
        return f"{task}.outputs[{channel.name!r}]"
    return f"pipeline input {channel.name!r}"


def check_arguments(
    name: str, component: BaseComponent, kwargs: dict[str, Any], where: str
) -> None:
    """Missing, unknown and mistyped arguments, worded the way Python words them."""
    from kfp.dsl.pipeline_channel import PipelineChannel
    from kfp.dsl.types import type_utils

    spec = component.component_spec
    inputs = spec.inputs or {}
    outputs = spec.outputs or {}
    for key in kwargs:
        if key in inputs:
            continue
        if key in outputs:
            raise PipelineDefinitionError(
                f"{where}: {name}() argument {key!r} is an output; don't pass it, read it "
                f"from the task: task.outputs[{key!r}]"
            )
        known = ", ".join(inputs) or "none"
        raise PipelineDefinitionError(
            f"{where}: {name}() got an unexpected keyword argument {key!r} (inputs: {known})"
        )
    missing = [k for k, s in inputs.items() if k not in kwargs and not s.optional]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        names = ", ".join(repr(m) for m in missing)
        raise PipelineDefinitionError(
            f"{where}: {name}() missing required argument{plural} {names}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, value in kwargs.items():
            if value is None:
                continue
            if type_utils.verify_type_compatibility(value, inputs[key], "", raise_on_error=False):
                continue
            expected = _short_type(inputs[key].type)
            if isinstance(value, PipelineChannel):
                given = f"{_describe_channel(value)} is {_short_type(value.channel_type)}"
            else:
                given = f"got {type(value).__name__} {value!r}"
            raise PipelineDefinitionError(
                f"{where}: {name}() argument {key!r} expects {expected}, but {given}"
            )
