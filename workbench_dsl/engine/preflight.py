"""Preflight: everything that can be checked before the first task starts, checked at once.

A run that would fail halfway (after other tasks ran, spent time and wrote
results) because of something known up front is refused instead, with every
problem on its own line, and nothing is recorded: unknown, missing or mistyped
parameters; pipeline input artifacts not given or not found; kfp-kubernetes
settings a local run cannot provide; secrets, config maps and keys that are not
set here (with the command that sets them); container programs the host lacks;
executors that cannot run locally at all; placeholders only a cloud fills; and
what a task needs from outside this machine (``remote_needs``: a remote import it
reads, a cloud's tool or client, a download).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from workbench_dsl.engine import kube_objects, remote_needs, validate
from workbench_dsl.engine import params as ptypes
from workbench_dsl.engine import platform as plat
from workbench_dsl.engine.container import missing_program_message
from workbench_dsl.engine.lightweight import plan_executor
from workbench_dsl.engine.placeholders import ESCAPES_WORDS, unknown_placeholders
from workbench_dsl.engine.spec import PipelineSpec, component_ref, is_dag
from workbench_dsl.errors import UsageError

_STUB_IMAGES = ("argostub/createpvc", "argostub/deletepvc")


def check(
    spec: PipelineSpec,
    params: dict[str, Any],
    *,
    from_cli: bool,
    root: Path | None,
    inputs: dict[str, str] | None = None,
) -> tuple[dict[str, Any], plat.PlatformPlan]:
    """Type the parameters and read the platform document; refuse with every problem found.

    Raises:
        UsageError: one line per problem, after a first line naming the pipeline.
    """
    problems: list[str] = validate.problems(spec.spec)
    if problems:  # the checks below read the spec's structure: refuse a broken one first
        _refuse(spec, problems)
    try:
        typed = ptypes.pipeline_arguments(spec.input_definitions, dict(params), from_cli=from_cli)
    except UsageError as e:
        problems.append(str(e))
        typed = {k: v for k, v in params.items() if k in spec.input_definitions}
    problems += input_problems(spec, inputs or {})
    plan = plat.plan(spec, typed)
    problems += plan.refusals
    if root is not None:
        problems += object_problems(plan, root, typed)
        problems += mount_problems(plan, typed, root)
    problems += remote_needs.importer_problems(spec, typed)
    problems += program_problems(spec)
    problems += final_status_problems(spec)
    if problems:
        _refuse(spec, problems)
    return typed, plan


def _refuse(spec: PipelineSpec, problems: list[str]) -> None:
    if len(problems) == 1:
        raise UsageError(f"cannot run {spec.name!r} locally: {problems[0]}")
    lines = "\n".join(f"  - {p}" for p in problems)
    raise UsageError(
        f"cannot run {spec.name!r} locally ({len(problems)} problems, nothing ran):\n{lines}"
    )


def input_problems(spec: PipelineSpec, inputs: dict[str, str]) -> list[str]:
    out = []
    defs = spec.input_artifact_definitions
    for name in sorted(set(inputs) - set(defs)):
        known = ", ".join(sorted(defs)) or "none"
        out.append(f"unknown input artifact {name!r} (pipeline input artifacts: {known})")
    for name, d in defs.items():
        if name in inputs:
            if not os.path.exists(inputs[name]):
                out.append(f"input artifact {name!r}: {inputs[name]} does not exist")
        elif not d.get("isOptional"):
            out.append(
                f"pipeline input artifact {name!r} is not given: add --input {name}=PATH "
                f"(or run(..., inputs={{{name!r}: PATH}}))"
            )
    return out


def _pipeline_param(source: tuple[tuple[str, str], ...], params: dict[str, Any]) -> str | None:
    """A name a nested DAG gets from a pipeline parameter (``pipelinechannel--NAME``)."""
    src = dict(source)
    ref = src.get("input", "")
    if ref.startswith("pipelinechannel--") and ref[len("pipelinechannel--") :] in params:
        value = params[ref[len("pipelinechannel--") :]]
        return None if value in (None, "") else str(value)
    return None


def object_problems(plan: plat.PlatformPlan, root: Path, params: dict[str, Any]) -> list[str]:
    """Secrets, config maps and keys the tasks read that are not set here."""
    out: list[str] = []
    stores = {k: kube_objects.ObjectStore(root, k) for k in kube_objects.KINDS}
    seen: set[tuple[str, str, str]] = set()
    for ex in plan.executors.values():
        for ref in ex.env_refs:
            name = ref.name or _pipeline_param(ref.source, params)
            if ref.optional or not name or (ref.kind, name, ref.key) in seen:
                continue
            seen.add((ref.kind, name, ref.key))
            what = "secret" if ref.kind == "secret" else "config map"
            try:
                keys = stores[ref.kind].keys(name)
            except UsageError as e:
                out.append(str(e))
                continue
            cmd = kube_objects.set_command(ref.kind)
            if keys is None:
                out.append(f"{what} {name!r} is not set here: {cmd} {name} {ref.key}=VALUE")
            elif ref.key not in keys:
                out.append(
                    f"{what} {name!r} has no key {ref.key!r} (it has: "
                    f"{', '.join(keys) or 'none'}): {cmd} {name} {ref.key}=VALUE"
                )
    return out


def mount_problems(plan: plat.PlatformPlan, params: dict[str, Any], root: Path) -> list[str]:
    """Volumes need a user + mount namespace and a mount point; secrets/config maps must exist."""
    from workbench_dsl.engine import mounts

    refs = [r for ex in plan.executors.values() for r in ex.mounts]
    if not refs:
        return []
    out: list[str] = []
    why = mounts.available()
    if why is not None:
        out.append(why)
    for path in sorted({r.path for r in refs}):
        p = mounts.path_problem(path)
        if p:
            out.append(p)
    for r in refs:
        if r.kind not in ("secret", "configmap") or r.optional:
            continue
        src = dict(r.source)
        name = r.name or (params.get(src["input"]) if "input" in src else None)
        name = name or _pipeline_param(r.source, params)
        if not name:
            continue
        what = "secret" if r.kind == "secret" else "config map"
        try:
            found = kube_objects.ObjectStore(root, r.kind).get(str(name)) is not None
        except UsageError as e:
            out.append(str(e))
            continue
        if not found:
            out.append(
                f"{what} {name!r} is not set here: {kube_objects.set_command(r.kind)} {name} "
                f"KEY=VALUE"
            )
    return list(dict.fromkeys(out))


def final_status_problems(spec: PipelineSpec) -> list[str]:
    """A ``PipelineTaskFinalStatus`` fed by the pipeline's own input: nothing can produce it.

    KFP compiles a component that takes one into such a pipeline so that it can be
    loaded (``components.load_component_from_file``) and used as an exit task; only
    an exit handler gives it a status.
    """
    out = []
    root_inputs = (spec.root.get("inputDefinitions") or {}).get("parameters") or {}
    for name, task in ((spec.root.get("dag") or {}).get("tasks") or {}).items():
        comp = spec.components.get(component_ref(task)) or {}
        defs = (comp.get("inputDefinitions") or {}).get("parameters") or {}
        for pname, ref in ((task.get("inputs") or {}).get("parameters") or {}).items():
            src = ref.get("componentInputParameter")
            if (defs.get(pname) or {}).get(
                "parameterType"
            ) == "TASK_FINAL_STATUS" and src in root_inputs:
                out.append(
                    f"task {name} takes a PipelineTaskFinalStatus ({pname!r}) from the pipeline's "
                    f"input, which nothing produces: load this file as a component "
                    f"(components.load_component_from_file) and use it as the exit task of a "
                    f"dsl.ExitHandler"
                )
    return out


def _used_executors(spec: PipelineSpec) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    dags = [spec.root.get("dag") or {}]
    dags += [c["dag"] for c in spec.components.values() if is_dag(c)]
    for dag in dags:
        for name, task in (dag.get("tasks") or {}).items():
            comp = spec.components.get(component_ref(task)) or {}
            label = comp.get("executorLabel")
            if label:
                out.setdefault(str(label), []).append(name)
    return out


_PLACEHOLDER_HINTS = {
    "{{$.pipeline_persistent_resource_id}}": (
        ": Vertex AI fills it with its persistent resource, which a local run does not have"
    ),
}

_INTERPRETERS = {"sh", "bash", "ash", "python", "python3", "node", "Rscript", "perl", "ruby"}


def _script_in_image(argv: list[str]) -> str | None:
    """``sh run.sh`` / ``python3 train.py``: a relative script file that only the image has.

    A task runs in a fresh work directory, so a relative path there never exists here.
    """
    if len(argv) < 2 or os.path.basename(argv[0]) not in _INTERPRETERS:
        return None
    arg = argv[1]
    if arg.startswith("-") or "{{" in arg or os.path.isabs(arg):
        return None
    if "/" in arg or "." in arg:
        return arg
    return None


def program_problems(spec: PipelineSpec) -> list[str]:
    """Executors that cannot run here, and container programs the host lacks."""
    out = []
    path = os.environ.get("PATH", os.defpath)
    # KFP gives each call of a component its own executor (exec-noop, exec-noop-2, ...):
    # the same command, planned once (a plan parses the install script).
    plans: dict[str, Any] = {}
    for label, tasks in sorted(_used_executors(spec).items()):
        executor = spec.executors.get(label) or {}
        if "importer" in executor:
            continue
        image = str((executor.get("container") or {}).get("image") or "")
        if image in _STUB_IMAGES:
            continue
        who = ", ".join(sorted(set(tasks)))
        key = json.dumps(executor, sort_keys=True, default=str)
        p = plans.get(key)
        if p is None:
            p = plans[key] = plan_executor(executor)
        remote = remote_needs.executor_problems(who, p)
        out += remote
        out += [
            f"task {who}: unknown placeholder {ph}{_placeholder_hint(ph)}"
            for ph in unknown_placeholders(executor.get("container") or {})
        ]
        if remote:
            continue
        if p.kind == "unsupported":
            out.append(f"task {who}: {p.error}")
        elif p.kind == "container" and p.argv and not p.requirements.packages:
            program = p.argv[0]
            if "{{" in program:
                continue
            found = (
                os.path.isfile(program) and os.access(program, os.X_OK)
                if "/" in program
                else shutil.which(program, path=path) is not None
            )
            if not found:
                out.append(f"task {who}: {missing_program_message(program, image)}")
            elif (script := _script_in_image(list(p.argv))) is not None:
                out.append(
                    f"task {who}: script '{script}' is not on this machine; it is a file in "
                    f"image {image}, which is not used locally: run the pipeline on a cluster"
                )
    return out


def _placeholder_hint(ph: str) -> str:
    if ph in _PLACEHOLDER_HINTS:
        return _PLACEHOLDER_HINTS[ph]
    return f" ({ESCAPES_WORDS})" if "json_escape[" in ph else ""
