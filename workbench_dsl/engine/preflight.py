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

from workbench_dsl.engine import dag_inputs, kube_objects, remote_needs, validate, volumes
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
    typed, problems = ptypes.argument_problems(
        spec.input_definitions, dict(params), from_cli=from_cli
    )
    problems += input_problems(spec, inputs or {})
    plan = plat.plan(spec, typed)
    problems += plan.refusals
    if root is not None:
        problems += object_problems(spec, plan, root, typed)
        problems += mount_problems(spec, plan, typed)
    problems += remote_needs.importer_problems(spec, typed)
    problems += program_problems(
        spec, {m.path for ex in plan.executors.values() for m in ex.mounts}
    )
    problems += final_status_problems(spec)
    problems += create_pvc_problems(spec, typed)
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


def _names(
    label: str,
    name: str | None,
    source: tuple[tuple[str, str], ...],
    known: dag_inputs.Values,
    where: dict[str, set[str]],
) -> list[str]:
    """The names an object of an executor may have, as far as they are known before the run."""
    if name:
        return [name]
    src = dict(source)
    if "input" not in src:
        return []  # a task's output: only the run knows it
    found: set[str] = set()
    for dag in where.get(label, ()):
        found.update(v for v in known.get(dag, {}).get(src["input"], ()) if v)
    return sorted(found)


def object_problems(
    spec: PipelineSpec, plan: plat.PlatformPlan, root: Path, params: dict[str, Any]
) -> list[str]:
    """Secrets, config maps and keys the tasks read that are not set here, env or files."""
    out: list[str] = []
    stores = {k: kube_objects.ObjectStore(root, k) for k in kube_objects.KINDS}
    if not any(ex.env_refs or ex.mounts for ex in plan.executors.values()):
        return []  # nothing to look up: spare a spec of thousands of tasks the walk
    known, where = dag_inputs.known_inputs(spec, params), dag_inputs.executor_dags(spec)
    wanted: list[tuple[str, str, str | None]] = []  # kind, name, key (None: any, as files)
    for label, ex in sorted(plan.executors.items()):
        for ref in ex.env_refs:
            if not ref.optional:
                wanted += [
                    (ref.kind, n, ref.key)
                    for n in _names(label, ref.name, ref.source, known, where)
                ]
        for m in ex.mounts:
            if m.kind in kube_objects.KINDS and not m.optional:
                wanted += [(m.kind, n, None) for n in _names(label, m.name, m.source, known, where)]
            elif m.kind == "pvc":  # a claim's name must be one Kubernetes accepts
                for n in _names(label, m.name, m.source, known, where):
                    try:
                        volumes.volume_dir(root, n)
                    except UsageError as e:
                        out.append(str(e))
    for kind, name, key in dict.fromkeys(wanted):
        what = "secret" if kind == "secret" else "config map"
        try:
            data = stores[kind].get(name)
        except UsageError as e:
            out.append(str(e))
            continue
        cmd = f"{kube_objects.set_command(kind)} {name} {key or 'KEY'}=VALUE"
        if data is None:
            out.append(f"{what} {name!r} is not set here: {cmd}")
        elif key is not None and key not in data:
            keys = ", ".join(sorted(data)) or "none"
            out.append(f"{what} {name!r} has no key {key!r} (it has: {keys}): {cmd}")
        elif key is not None:  # read as an env var
            problem = kube_objects.env_problem(kind, name, key, data[key])
            if problem is not None:
                out.append(problem)
    return list(dict.fromkeys(out))


def mount_problems(
    spec: PipelineSpec, plan: plat.PlatformPlan, params: dict[str, Any]
) -> list[str]:
    """Volumes need a user + mount namespace and a mount point.

    An optional secret or config map named by a pipeline parameter left unset is not
    mounted at all, so it needs neither.
    """
    from workbench_dsl.engine import mounts

    if not any(ex.mounts for ex in plan.executors.values()):
        return []
    where = dag_inputs.executor_dags(spec)
    refs = [
        r
        for label, ex in plan.executors.items()
        for r in ex.mounts
        if not (
            r.optional
            and not r.name
            and where.get(label) == {dag_inputs.ROOT}
            and params.get(dict(r.source).get("input", "")) in (None, "")
            and "task" not in dict(r.source)
        )
    ]
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
    return out


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


def create_pvc_problems(spec: PipelineSpec, params: dict[str, Any]) -> list[str]:
    """A ``CreatePVC`` sure to be given both ``pvc_name`` and ``pvc_name_suffix``.

    KFP's driver fails such a step (backend/src/v2/driver/k8s.go, createPVC: at most one
    of them can be non-empty); one whose values only the run knows fails as it does.
    """
    out = []
    known = dag_inputs.known_inputs(spec, params)
    dags = [(dag_inputs.ROOT, spec.root.get("dag") or {})]
    dags += [(n, c["dag"]) for n, c in spec.components.items() if is_dag(c)]
    for dag_name, dag in dags:
        for name, task in (dag.get("tasks") or {}).items():
            comp = spec.components.get(component_ref(task)) or {}
            executor = spec.executors.get(str(comp.get("executorLabel"))) or {}
            if str((executor.get("container") or {}).get("image")) != "argostub/createpvc":
                continue
            given = (task.get("inputs") or {}).get("parameters") or {}
            both = all(
                key in given and None not in dag_inputs.value_of(given[key], known.get(dag_name))
                for key in ("pvc_name", "pvc_name_suffix")
            )
            if both:
                out.append(
                    f"task {name}: CreatePVC is given both pvc_name and pvc_name_suffix, and "
                    f"KFP's driver fails it (at most one of them can be non-empty): give one"
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


def _paths_in_image(argv: list[str], mounted: set[str]) -> list[str]:
    """Absolute paths the command runs (a program, or an interpreter's script) that are
    not on this machine, that the command names nowhere else (a test such as
    ``[ -x PATH ]``, or its folder in a ``mkdir``, ``cp`` or redirect, means it may
    cope or make it) and that are not in a volume (``mounted``: an upstream task may
    have written them there): ``python3 /app/train.py``, ``sh -c '/opt/tools/prep.sh'``.
    """
    text = "\n".join(argv)
    if "<<" in text:  # a here-document's lines are data, not commands
        return []
    runs: list[str] = []
    for words in remote_needs.simple_commands(argv):
        runs.append(words[0])
        if os.path.basename(words[0]) in _INTERPRETERS and len(words) > 1:
            runs.append(words[1])
    out = []
    for path in dict.fromkeys(runs):
        if not path.startswith("/") or any(c in path for c in "{$*?`'\""):
            continue
        if os.path.exists(path) or any(path.startswith(m.rstrip("/") + "/") for m in mounted):
            continue
        named = runs.count(path)
        if text.count(path) > named or text.count(os.path.dirname(path) + "/") > named:
            continue
        out.append(path)
    return out


def program_problems(spec: PipelineSpec, mounted: set[str] | None = None) -> list[str]:
    """Executors that cannot run here, and container programs the host lacks.

    ``mounted``: the mount paths of the run's volumes, whose files only the run makes.
    """
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
            else:
                out += [
                    f"task {who}: '{path}' is not on this machine; it is a file in image "
                    f"{image}, which is not used locally: run the pipeline on a cluster"
                    for path in _paths_in_image(list(p.argv), mounted or set())
                ]
    return out


def _placeholder_hint(ph: str) -> str:
    if ph in _PLACEHOLDER_HINTS:
        return _PLACEHOLDER_HINTS[ph]
    return f" ({ESCAPES_WORDS})" if "json_escape[" in ph else ""
