"""Build and run the replay of one task: exactly its recorded inputs, outputs to a scratch dir.

The task's executor comes from the run's own compiled spec, its parameter
values from what the run recorded (``-p`` overrides one), and each input
artifact from the content-addressed store, checked against its digest and
copied into the scratch directory, so the replay can neither read different
data nor change the stored one. Nothing is written to the run store, the cache
or the registry: the replay has no run id of its own, and launcher steps
(``@train``, ``@sweep``, ``@register``, ``@serve``) run the user's function
instead of their launcher (see ``_launchers.py``).

Lightweight Python components run through ``kfp.dsl.executor_main`` in a child
(``_child.py``) attached to this terminal; container components run their
command on the host, as the engine runs them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench_dsl import _env
from workbench_dsl._settings import SettingsError
from workbench_dsl.errors import UsageError

_EXECUTOR_KINDS = ("container",)


@dataclass
class ReplayPlan:
    """Everything one replay needs, decided before anything runs.

    Attributes:
        run_id: The run the task belongs to.
        task: The task's qualified name.
        kind: ``python`` (lightweight component), ``container``, or a launcher kind
            (``train``, ``sweep``, ``register``, ``serve``).
        scratch: Where the replay's inputs, work directory and outputs go.
        executor_input: KFP's ExecutorInput, paths under ``scratch``.
        params: The parameter values it gets (recorded, with overrides applied).
        overridden: Names of the parameters ``-p`` changed.
        env: Extra environment for the task.
        program: For Python kinds: the component's module file.
        function: For Python kinds: the function to execute.
        argv: For containers: the resolved command.
        notes: Things to tell the user before it starts.
        mounts: The task's volumes (``mounts.enter``), mounted in its own namespace.
        mask: The secret values it reads (never printed by the replay itself).
    """

    run_id: str
    task: str
    kind: str
    scratch: Path
    executor_input: dict[str, Any]
    params: dict[str, Any]
    overridden: list[str]
    env: dict[str, str]
    program: str | None = None
    function: str | None = None
    argv: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    launcher: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    mask: list[str] = field(default_factory=list)


def _find_task(store: Any, run_id: str, name: str) -> Any:
    rows = [t for t in store.tasks(run_id) if t["kind"] in _EXECUTOR_KINDS]
    exact = [t for t in rows if t["task"] == name]
    found = exact or [t for t in rows if t["task"].rsplit("/", 1)[-1] == name]
    names = ", ".join(t["task"] for t in rows[:12])
    if not found:
        raise UsageError(f"run {run_id} has no task {name!r} that ran a program (tasks: {names})")
    if len(found) > 1:
        many = ", ".join(t["task"] for t in found[:6])
        raise UsageError(
            f"{name!r} names several tasks of run {run_id} ({many}); give the full name"
        )
    row = found[0]
    if not row["inputs_json"]:
        raise UsageError(
            f"task {row['task']} of run {run_id} never got its inputs ({row['status']}): "
            f"there is nothing to replay"
        )
    return row


def _override(
    component: dict[str, Any], params: dict[str, Any], given: dict[str, str], extra: dict[str, Any]
) -> list[str]:
    """Apply ``-p`` values, typed by the component's inputs (or, for a sweep, its space)."""
    from workbench_dsl.engine import params as ptypes

    defs = (component.get("inputDefinitions") or {}).get("parameters") or {}
    done = []
    for name, text in given.items():
        if name in defs:
            try:
                params[name] = ptypes.from_text(text, defs[name].get("parameterType") or "STRING")
            except ptypes.ParameterTypeError as e:
                raise UsageError(f"-p {name}: {e}") from None
        elif name in extra:
            try:
                extra[name] = json.loads(text)
            except json.JSONDecodeError:
                extra[name] = text
        else:
            known = ", ".join(sorted([*defs, *extra])) or "none"
            raise UsageError(f"the task has no parameter {name!r} (its parameters: {known})")
        done.append(name)
    return done


def _copy_inputs(
    arts: dict[str, list[dict[str, Any]]], into: Path
) -> dict[str, list[dict[str, Any]]]:
    """Input artifacts checked against their digests and copied under ``into``."""
    from workbench_dsl.engine.cas import digest

    out: dict[str, list[dict[str, Any]]] = {}
    for name, listed in arts.items():
        copies = []
        for i, a in enumerate(listed):
            a = dict(a)
            uri = str(a.get("uri") or "")
            if a.get("sha256") and "://" not in uri:
                src = Path(uri)
                try:
                    found, _ = digest(src)
                except FileNotFoundError:
                    raise UsageError(
                        f"input artifact {name} is gone from {src}; the replay cannot have the "
                        f"inputs the task had"
                    ) from None
                if found != a["sha256"]:
                    raise UsageError(
                        f"input artifact {name} at {src} no longer has the digest its run "
                        f"recorded; refusing to replay with different data"
                    )
                dest = into / (f"{name}.{i}" if len(listed) > 1 else name) / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dest, symlinks=True)
                else:
                    shutil.copyfile(src, dest)
                a["uri"] = str(dest)
            copies.append(a)
        out[name] = copies
    return out


def prepare(
    run_ref: str,
    task: str,
    overrides: dict[str, str] | None = None,
    *,
    root: Any = None,
    scratch: Path | None = None,
) -> ReplayPlan:
    """Decide how to replay ``task`` of ``run_ref``; copies its inputs into the scratch dir.

    Raises:
        UsageError: unknown run or task, a bad override, an input whose digest changed,
            or an executor that cannot run here.
    """
    from workbench_dsl.client._launcher import launcher_call
    from workbench_dsl.engine import attempts as att
    from workbench_dsl.engine.lightweight import plan_executor
    from workbench_dsl.engine.placeholders import Resolver, RunContext
    from workbench_dsl.engine.spec import PipelineSpec
    from workbench_dsl.engine.store import open_reader
    from workbench_dsl.paths import local_root

    lr = root or local_root()
    store = open_reader(lr.runs_db)
    try:
        run = store.find_run(run_ref)
        run_id = run["run_id"]
        row = _find_task(store, run_id, task)
    finally:
        store.close()
    spec = PipelineSpec.parse(run["spec_text"])
    component = spec.component(row["component"])
    executor = spec.executor(row["executor"])
    plan = plan_executor(executor)
    if plan.kind == "unsupported":
        raise UsageError(f"cannot replay {row['task']}: {plan.error}")
    recorded = json.loads(row["inputs_json"])
    params = dict(recorded.get("parameters") or {})
    launcher = launcher_call(plan.source) if plan.kind == "python" else None
    extra: dict[str, Any] = {}  # what a launcher replay takes beyond the step's inputs
    if launcher is not None and launcher.kind == "sweep":
        try:
            extra = _trial_values(launcher.config, json.loads(row["outputs_json"] or "{}"))
        except SettingsError as e:
            raise UsageError(f"cannot replay {row['task']}: {e}") from None
    elif launcher is not None and launcher.kind == "serve":
        extra = {"instances": None}
    overridden = _override(component, params, dict(overrides or {}), extra)

    scratch = scratch or Path(
        tempfile.mkdtemp(
            prefix=f"workbench-replay-{run_id}-{att.safe_path(row['task']).replace('/', '-')}-"
        )
    )
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o700)
    arts = _copy_inputs(dict(recorded.get("artifacts") or {}), scratch / "inputs")
    work = scratch / "work"
    ei = att.executor_input(component, params, arts, work)
    ctx = RunContext.for_task(
        run_id=run_id,
        task=row["task"],
        pipeline=spec.name,
        pipeline_root=str(scratch / "run"),
        workspace=str(scratch / "run" / "workspace"),
        create_time_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    resolver = Resolver(ei, ctx)
    try:
        resolved = resolver.resolve_executor_input()
        argv = resolver.resolve_command(list(plan.argv)) if plan.kind == "container" else []
    except ValueError as e:
        raise UsageError(f"cannot resolve {row['task']}'s command: {e}") from None
    env = {
        str(e.get("name")): str(e.get("value", ""))
        for e in (executor.get("container") or {}).get("env") or []
        if e.get("name")
    }
    from workbench_dsl.replay._pod import standins

    pod_env, volumes, secrets = standins(lr, spec, run_id, row, scratch)
    env.update(pod_env)
    env.update(
        {
            _env.ENGINE: "local",
            _env.HOME: str(lr.root),
            _env.RUN_ID: run_id,
            _env.PIPELINE: spec.name,
            _env.TASK: row["task"],
            _env.ATTEMPT: "replay",
            _env.RUN_DIR: str(scratch / "run"),
            _env.STATUS_FILE: str(scratch / "status.txt"),
        }
    )
    result = ReplayPlan(
        run_id=run_id,
        task=row["task"],
        kind=launcher.kind if launcher else plan.kind,
        scratch=scratch,
        executor_input=resolved,
        params=params,
        overridden=overridden,
        env=env,
        argv=argv,
        mounts=volumes,
        mask=secrets,
    )
    if plan.kind == "python":
        assert plan.source is not None and plan.function is not None
        prog = scratch / "program" / f"{plan.module}.py"
        prog.parent.mkdir(parents=True, exist_ok=True)
        prog.write_text(plan.source, encoding="utf-8")
        result.program, result.function = str(prog), plan.function
        if launcher is not None:
            result.launcher = {
                "kind": launcher.kind,
                "source": launcher.source,
                "name": launcher.name,
                "config": launcher.config,
                "extra": extra,
            }
    result.layers = _layers(lr, plan)
    if plan.kind == "container":
        from workbench_dsl.engine import container

        try:  # python/python3 are always there: execute() puts the engine's own first on PATH
            if argv and argv[0] not in ("python", "python3"):
                container.check_program(argv, {**os.environ, **env}, plan.image)
        except container.MissingProgram as e:
            raise UsageError(f"cannot replay {row['task']}: {e}") from None
        result.notes.append(container.image_notice(plan.image))
        container.make_output_dirs(resolved)
    return result


def _trial_values(config: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """One trial's parameters: the sweep's best when it found one, else each range's start."""
    from workbench_dsl.runtime.settings import SweepStepSettings

    best = (outputs.get("parameters") or {}).get("best_params")
    values: dict[str, Any] = {}
    for p in SweepStepSettings.from_json(config).search.params:
        if isinstance(best, dict) and p.name in best:
            values[p.name] = best[p.name]
        elif p.values:
            values[p.name] = p.values[0]
        else:
            values[p.name] = p.low
    return values


def _layers(root: Any, plan: Any) -> list[str]:
    """Package layers the task's requirements need (installed once, as the engine would)."""
    from workbench_dsl.engine.requirements import LayerCache

    if not plan.requirements:
        return []
    cache = LayerCache(root.envs)
    missing = cache.missing(plan.requirements)
    if not missing:
        return []
    layer = cache.ready_path(plan.requirements, missing)
    if layer is None:
        print(f"installing {' '.join(missing)} for the replay ...", file=sys.stderr)
        layer = cache.ensure(
            plan.requirements,
            missing,
            log=lambda text: print(text, file=sys.stderr),
            started=lambda proc: None,
            cancelled=lambda: False,
        )
    return [str(layer)]


def execute(
    plan: ReplayPlan, *, debug: bool = False, stdout_to_stderr: bool = False
) -> tuple[int, dict[str, Any]]:
    """Run the replay in the foreground (this terminal); its exit code and its outputs.

    With ``debug``, an exception in the task stops in ``pdb`` (post-mortem) at the
    task's own frame. With ``stdout_to_stderr`` the task prints on stderr (so that
    stdout carries only a ``--json`` result).
    """
    from workbench_dsl.engine.outputs import OutputError, collect_outputs
    from workbench_dsl.engine.requirements import python_path

    work = plan.scratch / "work"
    work.mkdir(parents=True, exist_ok=True)
    bin_dir = plan.scratch / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("python", "python3"):  # the engine's interpreter, as the engine's runner gives
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    env = {**os.environ, **plan.env}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
    pip_target = plan.scratch / "pip"
    pip_target.mkdir(exist_ok=True)
    paths = [*plan.layers, str(pip_target)]
    env["PIP_TARGET"] = str(pip_target)
    env["PYTHONPATH"] = python_path(paths, env.get("PYTHONPATH"))
    if plan.program is not None:
        env["_KFP_RUNTIME"] = "true"
        request = plan.scratch / "request.json"
        request.write_text(
            json.dumps(
                {
                    "program": plan.program,
                    "function": plan.function,
                    "executor_input": plan.executor_input,
                    "launcher": plan.launcher,
                    "debug": debug,
                    "cwd": str(work),
                }
            ),
            encoding="utf-8",
        )
        argv = [sys.executable, "-m", "workbench_dsl.replay._child", str(request)]
    else:
        argv = _debuggable(plan.argv) if debug else list(plan.argv)
    enter = None
    if plan.mounts:  # in the child, as the engine's worker mounts them: nothing on the host
        from workbench_dsl.engine import mounts

        for m in plan.mounts:
            mounts.make_mount_point(str(m["path"]))
        enter = functools.partial(mounts.enter, plan.mounts)
    code = subprocess.call(
        argv, cwd=work, env=env, stdout=2 if stdout_to_stderr else None, preexec_fn=enter
    )
    status = Path(plan.env.get(_env.STATUS_FILE, ""))
    if plan.mask and status.name and status.is_file():  # as the engine keeps it: masked
        from workbench_dsl.engine.kube_objects import redact

        status.write_text(redact(status.read_text(errors="replace"), plan.mask))
    outputs: dict[str, Any] = {}
    if code == 0:
        try:
            outputs = collect_outputs(plan.executor_input)
        except OutputError as e:
            from workbench_dsl.engine.kube_objects import redact

            print(f"replay: {redact(str(e), plan.mask)}", file=sys.stderr)
            code = 1
    return code, outputs


def _debuggable(argv: list[str]) -> list[str]:
    """``python script.py ...`` / ``python -m mod ...`` under ``pdb`` (post-mortem on error)."""
    is_python = bool(argv) and os.path.basename(argv[0]).startswith("python")
    if is_python and len(argv) > 1 and (argv[1] == "-m" or not argv[1].startswith("-")):
        return [argv[0], "-m", "pdb", "-c", "continue", *argv[1:]]
    print(
        "replay: --pdb debugs Python programs (python script.py / python -m module); "
        "this command runs without it",
        file=sys.stderr,
    )
    return list(argv)
