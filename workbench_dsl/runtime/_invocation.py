"""One call of the user's function, as JSON that can travel to another process or pod.

An invocation holds the function's source, its parameter values (KFP
parameters are JSON already) and its artifacts as ``{type, uri, path,
metadata, output}``. The launcher writes it; each rank (``runtime._rank``) or
pod (``runtime._pod``) reads it back into the same KFP artifact objects the
function would get from KFP's own executor.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Env var: the path of the invocation JSON (local ranks and pod ranks).
INVOCATION_FILE = "WORKBENCH_INVOCATION"
#: Env var: the invocation JSON itself (what a TrainJob or Katib trial pod receives).
INVOCATION_JSON = "WORKBENCH_INVOCATION_JSON"
#: Env var prefix: one trial parameter as Katib substitutes it (``${trialParameters.x}``).
TRIAL_PARAM_PREFIX = "WORKBENCH_TRIAL_PARAM_"


def output_names(fn: Callable[..., Any]) -> set[str]:
    """Names of the function's ``Output[...]`` artifact parameters."""
    from kfp.dsl.types import type_annotations

    names = set()
    for name, p in inspect.signature(fn).parameters.items():
        ann = p.annotation
        if ann is inspect.Parameter.empty or isinstance(ann, str):
            continue
        if type_annotations.is_Input_Output_artifact_annotation(
            ann
        ) and type_annotations.is_artifact_wrapped_in_Output(ann):
            names.add(name)
    return names


def _is_artifact(value: Any) -> bool:
    return hasattr(value, "schema_title") and hasattr(value, "uri") and hasattr(value, "metadata")


def describe_artifact(a: Any, *, output: bool, with_path: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": a.schema_title,
        "name": a.name,
        "uri": a.uri,
        "metadata": dict(a.metadata),
        "output": output,
    }
    if with_path:
        d["path"] = a.path
    return d


def split_arguments(
    fn: Callable[..., Any], kwargs: dict[str, Any], *, with_paths: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(parameters, artifacts)`` of a call, artifacts described as JSON."""
    outputs = output_names(fn)
    params: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    for name, value in kwargs.items():
        if _is_artifact(value):
            artifacts[name] = describe_artifact(value, output=name in outputs, with_path=with_paths)
        elif isinstance(value, list) and value and all(_is_artifact(v) for v in value):
            artifacts[name] = [
                describe_artifact(v, output=False, with_path=with_paths) for v in value
            ]
        else:
            params[name] = value
    return params, artifacts


def make_artifact(d: dict[str, Any], path: str | None = None) -> Any:
    """A KFP artifact object of the described type, at ``path`` if given."""
    from kfp.dsl.types import artifact_types

    cls = artifact_types._SCHEMA_TITLE_TO_TYPE.get(d["type"], artifact_types.Artifact)
    a = cls(
        name=d.get("name") or "", uri=d.get("uri") or "", metadata=dict(d.get("metadata") or {})
    )
    path = path or d.get("path")
    if path and a.path != path:
        a.custom_path = path
    return a


def restore_artifacts(
    artifacts: dict[str, Any], *, rank: int, scratch: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Artifact objects for one rank: ``(all by name, outputs by name)``.

    Only rank 0 writes to the real output locations; other ranks get private
    scratch paths, so ranks that all save "the model" do not clobber each other.
    """
    objects: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for name, d in artifacts.items():
        if isinstance(d, list):
            objects[name] = [make_artifact(x) for x in d]
            continue
        path = None
        if d.get("output") and rank != 0:
            path = str(scratch / f"rank-{rank}" / name)
        a = make_artifact(d, path)
        if d.get("output"):
            Path(a.path).parent.mkdir(parents=True, exist_ok=True)
            outputs[name] = a
        objects[name] = a
    return objects, outputs


def jsonable(value: Any) -> Any:
    """Plain JSON types from what a function returns (tuples, numpy and torch scalars)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(
        f"the function returned {type(value).__name__}, which cannot be passed on as a "
        f"pipeline value (use str, int, float, bool, dict or list)"
    )


def decode_return(value: Any, fn: Callable[..., Any]) -> Any:
    """The function's return value as KFP's executor expects it back."""
    ann = inspect.signature(fn).return_annotation
    if value is not None and hasattr(ann, "_fields") and isinstance(value, list):
        return tuple(value)
    return value


def trial_params_from_env(trial: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters Katib assigned this trial, typed as the search space says."""
    if not trial:
        return {}
    from workbench_dsl.backends.sweeper.base import Param

    values = {}
    for name, spec in trial["params"].items():
        text = os.environ.get(TRIAL_PARAM_PREFIX + name)
        if text is None:
            raise RuntimeError(f"the trial pod has no value for parameter {name!r}")
        values[name] = Param.from_spec(name, spec).coerce(text)
    return values


def dumps(inv: dict[str, Any]) -> str:
    return json.dumps(inv, sort_keys=True, separators=(",", ":"))
