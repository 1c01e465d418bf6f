"""What ``@train`` and ``@sweep`` bake into their launcher for the cluster, and the checks they share.

A launcher's own pod only creates and watches a TrainJob or a Katib
Experiment, so the step's compute profile goes to *those* pods (resources per
node, node selector, tolerations, cost annotation) and the launcher pod gets
no resource requests. Cluster settings (namespace, object-store endpoint and
secret) are read from ``workbench.toml`` when the step is compiled, because the
component later runs where no project file exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from workbench_dsl.compute import ClusterSettings
from workbench_dsl.config import Config, Preset, Profile
from workbench_dsl.dsl._where import function_location
from workbench_dsl.dsl.step import Step
from workbench_dsl.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from kfp.dsl.pipeline_task import PipelineTask

P = ParamSpec("P")
R = TypeVar("R")


def launcher_pod_profile(profile: Profile) -> Profile:
    """The profile for a launcher's own pod: the name (for labels), no compute, no cost."""
    return Profile(name=profile.name, description=profile.description)


def cluster_settings(config: Config, profile: Profile, preset: Preset | None) -> ClusterSettings:
    """What a launcher needs to build the cluster resources for its work."""
    return ClusterSettings.for_profile(
        profile,
        image=config.runtime_image,
        packages=tuple(preset.packages) if preset else (),
        namespace=config.get("cluster", "namespace"),
        artifact_endpoint=config.get("cluster", "artifact_store"),
        artifact_secret=config.get("cluster", "artifact_secret"),
    )


def use_artifact_secret(task: Any, config: Config) -> None:
    """Give the launcher pod the object-store credentials its work pods get."""
    secret = config.get("cluster", "artifact_secret")
    if secret:
        from kfp import kubernetes

        kubernetes.use_secret_as_env(
            task,
            secret_name=secret,
            secret_key_to_env={
                "accesskey": "AWS_ACCESS_KEY_ID",
                "secretkey": "AWS_SECRET_ACCESS_KEY",
            },
            # Only the cluster path reads it; a local run must not be refused for it.
            optional=True,
        )


def resolved_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations as types (string annotations evaluated as KFP would)."""
    import typing

    from kfp import dsl

    namespace = {**vars(typing), **vars(dsl), **getattr(fn, "__globals__", {})}
    try:
        return typing.get_type_hints(fn, globalns=namespace, include_extras=True)
    except Exception as e:
        raise PipelineDefinitionError(
            f"{function_location(fn)}: {fn.__name__}: an annotation cannot be evaluated "
            f"({type(e).__name__}: {e}); import the names it uses at module level"
        ) from None


def artifact_kind(annotation: Any) -> str | None:
    """``"input"``, ``"output"``, ``"path"`` (InputPath/OutputPath) or None for a parameter."""
    from kfp.dsl.types import type_annotations

    if isinstance(annotation, type_annotations.InputPath | type_annotations.OutputPath):
        return "path"
    if type_annotations.is_Input_Output_artifact_annotation(annotation):
        if type_annotations.is_artifact_wrapped_in_Output(annotation):
            return "output"
        return "input"
    if type_annotations.is_artifact_class(annotation):
        return "input"
    return None


def check_no_paths(fn: Callable[..., Any], kind: str, hints: dict[str, Any]) -> None:
    for name, ann in hints.items():
        if name != "return" and artifact_kind(ann) == "path":
            raise PipelineDefinitionError(
                f"{function_location(fn)}: @{kind} {fn.__name__}(): parameter {name!r} uses "
                f"InputPath/OutputPath; @{kind} hands artifacts to the function as objects, "
                f"write Input[Dataset] or Output[Model] instead"
            )


def parameters(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


class ClusterWorkStep(Step[P, R]):
    """A launcher whose work runs in other pods (``@train``'s TrainJob, ``@sweep``'s trials).

    Its own pod gets no compute (the profile goes to the work pods) and the
    object-store credentials its work pods get.
    """

    def _pod_profile(self, profile: Profile) -> Profile:
        return launcher_pod_profile(profile)

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineTask:
        task = super().__call__(*args, **kwargs)
        use_artifact_secret(task, self.config)
        return task
