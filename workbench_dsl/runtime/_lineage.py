"""OpenLineage from launcher steps that run without the local engine (on a cluster).

Under the local engine every task's events come from the engine itself. On a
cluster nobody else reports a step, so each launcher (``@train``, ``@sweep``,
``@register``, ``@serve``) emits START and COMPLETE or FAIL for its own task
when OpenLineage is configured for its pod the OpenLineage way
(``OPENLINEAGE_URL``, ``OPENLINEAGE__TRANSPORT__*``, ``openlineage.yml``; give
them through the step's ``env=`` or the runtime image). The events link to the
pipeline run (the KFP run's Argo workflow, read from the pod's name), and
datasets are named after their artifact URIs, which is what connects a
producer's output to its consumers' inputs in a lineage backend. Lineage never
fails a step: a broken backend costs a warning.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from workbench_dsl import _env

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# KFP v2 names an executor pod "<workflow>-system-container-impl-<n>" (or -driver-).
_POD = re.compile(r"^(?P<workflow>.+?)-system-(?:container|dag)-")


def run_id_from_pod(pod: str | None) -> str | None:
    """The KFP run's workflow name, from the executor pod's name."""
    m = _POD.match(pod or "")
    return m.group("workflow") if m else None


def _artifact(a: Any) -> dict[str, Any] | None:
    uri = getattr(a, "uri", None)
    if not uri:
        return None
    return {
        "uri": str(uri),
        "type": {"schemaTitle": getattr(a, "schema_title", "system.Artifact")},
        "metadata": dict(getattr(a, "metadata", {}) or {}),
    }


def _split(arguments: dict[str, Any], wrapper: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs (parameters, input artifacts) and output artifacts of the wrapper's call."""
    from kfp.dsl.types import type_annotations

    annotations = getattr(wrapper, "__annotations__", {}) or {}
    params: dict[str, Any] = {}
    ins: dict[str, list[dict[str, Any]]] = {}
    outs: dict[str, list[dict[str, Any]]] = {}
    for name, value in arguments.items():
        art = _artifact(value)
        if art is None:
            if isinstance(value, str | int | float | bool | list | dict) or value is None:
                params[name] = value
            continue
        is_output = type_annotations.is_artifact_wrapped_in_Output(annotations.get(name))
        (outs if is_output else ins)[name] = [art]
    return {"parameters": params, "artifacts": ins}, {"artifacts": outs}


def _returned(result: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    """Add a launcher's returned parameters (a NamedTuple or one value) to its outputs."""
    params: dict[str, Any] = {}
    if hasattr(result, "_asdict"):
        params = {k: v for k, v in result._asdict().items() if isinstance(v, str | int | float)}
    elif isinstance(result, str | int | float | bool):
        params = {"Output": result}
    return {**outputs, "parameters": params}


def reporting(kind: str) -> Callable[[F], F]:
    """Wrap a runtime's ``launch`` so that, off the local engine, it reports its task."""

    def wrap(launch: F) -> F:
        @functools.wraps(launch)
        def run(source: str, name: str, config_json: str, arguments: dict[str, Any]) -> Any:
            if _env.running_locally():
                return launch(source, name, config_json, arguments)
            recorder = _recorder()
            if recorder is None:
                return launch(source, name, config_json, arguments)
            # The generated wrapper that called us: its annotations say which artifacts
            # are outputs (a launcher's interface is not its user function's).
            caller = sys._getframe(1)
            wrapper = caller.f_globals.get(caller.f_code.co_name)
            inputs, outputs = _split(arguments, wrapper)
            pipeline = os.environ.get(_env.PIPELINE) or "pipeline"
            task = os.environ.get(_env.TASK) or name
            run_id = run_id_from_pod(os.environ.get("KFP_POD_NAME")) or uuid.uuid4().hex[:12]
            program = caller.f_code.co_filename
            launcher_source = _program(program)
            started = time.time()
            recorder.attach(run_id, pipeline)
            recorder.task_started(run_id, task, inputs=inputs, source=launcher_source)
            try:
                result = launch(source, name, config_json, arguments)
            except BaseException as e:
                recorder.task_finished(
                    run_id,
                    task,
                    status="FAILED",
                    inputs=inputs,
                    outputs={},
                    source=launcher_source,
                    attempt=1,
                    error=f"{type(e).__name__}: {e}",
                    duration_s=time.time() - started,
                )
                recorder.flush(10.0, 5.0)
                raise
            recorder.task_finished(
                run_id,
                task,
                status="SUCCEEDED",
                inputs=inputs,
                outputs=_returned(result, outputs),
                source=launcher_source,
                attempt=1,
                duration_s=time.time() - started,
            )
            recorder.flush(10.0, 5.0)
            return result

        return run  # type: ignore[return-value]

    return wrap


def _program(filename: str) -> str | None:
    try:
        with open(filename, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _recorder() -> Any:
    """A recorder sending to the configured backend, or None when none is configured."""
    try:
        from workbench_dsl.backends.lineage import LineageRecorder, load_settings

        settings = load_settings(local=False)
        if not settings.enabled or settings.remote is None:
            return None
        return LineageRecorder(settings, name_by_uri=True)
    except Exception as e:  # lineage must never be why a step fails
        log.warning("OpenLineage is configured but unusable here: %s", e)
        return None
