"""The task runner: executes one attempt of one task (a :class:`TaskSpec`) and reports a :class:`TaskOutcome`.

Lightweight Python components run in a warm worker (``worker.py``: a fresh
interpreter with kfp imported that forks one child per attempt) through KFP's
own ``kfp.dsl.executor_main``; container components run their command on the
host, forked by the same worker. Every attempt leads its own process session,
so a timeout or a cancel kills its whole tree, and a crash (segfault,
``os._exit``, a killed group) stays inside it. Package requirements are layered
per attempt (``requirements.py``); the engine's own environment never changes.

The scheduler calls :meth:`TaskRunner.submit` and alone limits concurrency;
``submit`` starts the attempt at once and never raises for a task-level failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench_dsl import _env, _procs
from workbench_dsl._procs import kill_tree
from workbench_dsl.engine import cgroups, container, mounts, resources
from workbench_dsl.engine.cgroups import RunCgroup
from workbench_dsl.engine.kube_objects import redact
from workbench_dsl.engine.lightweight import Plan, plan_executor
from workbench_dsl.engine.logs import log_max_bytes
from workbench_dsl.engine.outputs import OutputError, collect_outputs
from workbench_dsl.engine.placeholders import Resolver, RunContext
from workbench_dsl.engine.processes import (
    Deadlines,
    Spawner,
    WorkerProcess,
    in_run,
    open_log,
    read_json,
    write_line,
)
from workbench_dsl.engine.requirements import LayerCache, RequirementError, python_path
from workbench_dsl.engine.task_api import OutcomeStatus, TaskOutcome, TaskSpec
from workbench_dsl.paths import LocalRoot

_PYTHON_IMAGE = re.compile(r"^(?:(?:docker\.io/)?(?:library/)?python)(?::|@|$)")


@dataclass(eq=False)
class _Attempt:
    id: int
    spec: TaskSpec
    future: Future[TaskOutcome]
    started: float
    scratch: Path
    notices: list[str] = field(default_factory=list)
    plan: Plan | None = None
    executor_input: dict[str, Any] = field(default_factory=dict)
    worker: WorkerProcess | None = None
    pid: int | None = None
    sent: bool = False  # the worker has its request
    reason: OutcomeStatus | None = None  # TIMED_OUT or CANCELLED once we decided to kill it
    installer: subprocess.Popen[str] | None = None
    done: bool = False
    memory: int | None = None  # the profile's memory limit in bytes
    oom: bool = False  # the kernel ended it for its memory.max


class TaskRunner:
    """Runs task attempts: warm forked workers for Python components, host processes for containers.

    Example::

        with TaskRunner(local_root()) as runner:
            outcome = runner.submit(spec).result()
    """

    def __init__(self, root: LocalRoot) -> None:
        self.root = root
        self._layers = LayerCache(root.envs)
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self._programs: dict[str, str] = {}
        self._lock = threading.RLock()
        self._attempts: dict[int, _Attempt] = {}
        self._ids = itertools.count(1)
        self._worker: WorkerProcess | None = None
        self._closed = False
        self._run_times: dict[str, str] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="workbench-runner-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._tmp), True)
        self._bin = self._tmp / "bin"
        self._bin.mkdir()
        for name in ("python", "python3"):
            wrapper = self._bin / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
            wrapper.chmod(0o755)
        self._done: queue.SimpleQueue[tuple[_Attempt, int | None] | None] = queue.SimpleQueue()
        self._finisher = threading.Thread(
            target=self._finish_loop, name="runner-finish", daemon=True
        )
        self._finisher.start()
        self._deadlines: Deadlines[_Attempt] = Deadlines(self._on_deadline)
        self._log_max = log_max_bytes()
        self._cgroup = RunCgroup.create() if os.environ.get(_env.CGROUPS) != "0" else None
        private = self._tmp / "spawner"
        private.mkdir(mode=0o700)
        self._spawner = Spawner(
            private / "sock",
            root.root,
            root.envs,
            lambda pid: in_run(
                pid, self._worker_pid(), self._cgroup.path if self._cgroup else None
            ),
        )

    # -- public API ---------------------------------------------------------------

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warmup(self) -> None:
        """Start the warm worker now, so the first attempt does not wait for kfp's import."""
        with self._lock:
            if not self._closed:
                self._get_worker()

    def submit(self, spec: TaskSpec) -> Future[TaskOutcome]:
        """Start one attempt now; the future resolves when it has ended (never raises for a task)."""
        future: Future[TaskOutcome] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._closed:
                raise RuntimeError("TaskRunner.submit() after close()")
            attempt_id = next(self._ids)
            attempt = _Attempt(
                id=attempt_id,
                spec=spec,
                future=future,
                started=time.monotonic(),
                scratch=self._tmp / str(attempt_id),
            )
            self._attempts[attempt.id] = attempt
        if spec.timeout is not None:
            self._deadlines.add(time.monotonic() + max(spec.timeout, 0.0), attempt)
        try:
            self._start(attempt)
        except Exception as exc:  # a bug here must still end as one attempt's failure
            self._fail(attempt, f"internal error in the task runner: {type(exc).__name__}: {exc}")
        return future

    def cancel(self, task: str | None = None) -> None:
        """Kill the running attempt of ``task`` (every attempt when None): ``CANCELLED``."""
        with self._lock:
            victims = [a for a in self._attempts.values() if task is None or a.spec.task == task]
        for attempt in victims:
            self._kill(attempt, "CANCELLED")

    def close(self) -> None:
        """Kill every running attempt, stop the worker and remove scratch files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._attempts.values())
        for attempt in pending:
            self._kill(attempt, "CANCELLED")
        deadline = time.monotonic() + 10
        for attempt in pending:
            with contextlib.suppress(Exception):
                attempt.future.result(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        for attempt in list(self._attempts.values()):
            self._complete(attempt, None)
        self._done.put(None)
        self._finisher.join(timeout=5)
        self._deadlines.stop()
        self._spawner.close()
        if self._cgroup is not None:
            self._cgroup.close()  # whatever of the run is still alive ends here
        self._cleanup()

    @property
    def cgroup(self) -> RunCgroup | None:
        """The run's cgroup, or None where the host does not let the runner make one."""
        return self._cgroup

    def _worker_pid(self) -> int | None:
        worker = self._worker
        return worker.proc.pid if worker is not None else None

    # -- starting an attempt ----------------------------------------------------------

    def _start(self, attempt: _Attempt) -> None:
        spec = attempt.spec
        plan = self._plan(spec.executor)
        attempt.plan = plan
        if plan.kind == "unsupported":
            self._fail(attempt, plan.error or "this executor cannot run locally")
            return
        if plan.kind == "container":
            attempt.notices.append(container.image_notice(plan.image))
        elif plan.image and not _PYTHON_IMAGE.match(plan.image):
            attempt.notices.append(
                f"image {plan.image} is not used locally; the component's Python code runs in "
                f"the engine's interpreter (Python {sys.version_info[0]}.{sys.version_info[1]})"
            )
        missing = self._layers.missing(plan.requirements) if plan.requirements else ()
        layer = self._layers.ready_path(plan.requirements, missing) if missing else None
        if missing and layer is None:
            threading.Thread(
                target=self._install_then_launch,
                args=(attempt, missing),
                name=f"runner-install-{attempt.id}",
                daemon=True,
            ).start()
            return
        self._launch(attempt, [str(layer)] if layer else [])

    def _plan(self, executor: dict[str, Any]) -> Plan:
        c = executor.get("container") or {}
        key = (
            (
                c.get("image"),
                tuple(map(str, c.get("command") or ())),
                tuple(map(str, c.get("args") or ())),
            )
            if isinstance(c, dict) and c
            else (json.dumps(executor, sort_keys=True, default=str),)
        )
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_executor(executor)
        return plan

    def _install_then_launch(self, attempt: _Attempt, missing: tuple[str, ...]) -> None:
        assert attempt.plan is not None

        def started(proc: subprocess.Popen[str]) -> None:
            with self._lock:
                attempt.installer = proc
                killed = attempt.reason is not None
            if killed:
                kill_tree(proc.pid)

        try:
            with open_log(attempt.spec.log_path) as log:
                layer = self._layers.ensure(
                    attempt.plan.requirements,
                    missing,
                    log=lambda text: write_line(log, text),
                    started=started,
                    cancelled=lambda: attempt.reason is not None,
                )
        except RequirementError as exc:
            if attempt.reason is not None:
                self._complete(attempt, None)
            else:
                self._fail(attempt, str(exc))
            return
        except Exception as exc:
            self._fail(
                attempt, f"installing {' '.join(missing)} failed: {type(exc).__name__}: {exc}"
            )
            return
        with self._lock:
            attempt.installer = None
        if attempt.reason is not None:
            self._complete(attempt, None)
            return
        try:
            self._launch(attempt, [str(layer)])
        except Exception as exc:
            self._fail(attempt, f"internal error in the task runner: {type(exc).__name__}: {exc}")

    def _launch(self, attempt: _Attempt, layers: list[str]) -> None:
        spec, plan = attempt.spec, attempt.plan
        assert plan is not None
        resolver = Resolver(spec.executor_input, self._context(spec))
        try:
            executor_input = resolver.resolve_executor_input()
            argv = (
                resolver.resolve_command(
                    [
                        container.expand_env_refs(a, spec.env) if isinstance(a, str) else a
                        for a in plan.argv
                    ]
                )
                if plan.kind == "container"
                else []
            )
        except ValueError as exc:  # an unknown placeholder, a malformed Concat/IfPresent
            self._fail(attempt, f"cannot resolve the component's command: {exc}")
            return
        attempt.executor_input = executor_input
        env = {**os.environ, **spec.env}
        for name in (*_env.ENGINE_INTERNAL, *_env.USER_SECRETS):
            env.pop(name, None)
        env[_env.SPAWNER] = str(self._spawner.path)
        env["PATH"] = f"{self._bin}{os.pathsep}{env.get('PATH', os.defpath)}"
        # pip inside a task installs into the attempt's scratch, never into the engine's env.
        pip_target = attempt.scratch / "pip"
        pip_target.mkdir(parents=True)
        paths = [*layers, str(pip_target)]
        env["PIP_TARGET"] = str(pip_target)
        env["PYTHONPATH"] = python_path(paths, env.get("PYTHONPATH"))
        spec.workdir.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        request: dict[str, Any] = {
            "id": attempt.id,
            "env": env,
            "cwd": str(spec.workdir),
            "log": str(spec.log_path),
            "result": str(attempt.scratch / "result.json"),
            "log_max": self._log_max,
        }
        self._limit(attempt, request)
        if spec.mounts:
            try:
                for m in spec.mounts:
                    mounts.make_mount_point(str(m["path"]))
            except OSError as exc:
                self._fail(attempt, f"cannot make the mount point: {exc}")
                return
            request["mounts"] = list(spec.mounts)
        if spec.mask:
            request["mask"] = list(spec.mask)
        if plan.kind == "python":
            if plan.executor_input_arg == "{{$}}":
                ei_json = json.dumps(executor_input)
            else:
                ei_json = resolver.resolve_string(plan.executor_input_arg)
            request.update(
                op="python",
                program=self._program(plan),
                function=plan.function,
                executor_input=ei_json,
                paths=paths,
            )
        else:
            argv = container.host_shell(argv, env.get("PATH"))
            try:
                container.check_program(argv, env, plan.image)
            except container.MissingProgram as exc:
                self._fail(attempt, str(exc))
                return
            container.make_output_dirs(executor_input)
            request.update(op="exec", argv=argv)
        if resolver.used_workspace:
            os.makedirs(resolver.ctx.workspace, exist_ok=True)
        for last_try in (False, True):
            with self._lock:
                if attempt.reason is not None:
                    worker = None
                else:
                    worker = attempt.worker = self._get_worker()
            if worker is None:
                self._complete(attempt, None)
                return
            try:
                worker.send(request)
            except OSError:
                # The worker died before taking the request: a new one gets it.
                with self._lock:
                    if self._worker is worker:
                        self._worker = None
                if last_try:
                    raise
                continue
            with self._lock:
                attempt.sent = True
                orphaned = attempt.worker is not worker
            if orphaned:  # it took the request, then died before saying it started
                self._fail(
                    attempt, f"the warm worker died before the task started{worker.death_note()}"
                )
            return

    def _limit(self, attempt: _Attempt, request: dict[str, Any]) -> None:
        """The attempt's cgroup and memory limit, in the worker's request."""
        attempt.memory = resources.memory_limit(attempt.spec.executor)
        if self._cgroup is not None:
            request["cgroup"] = str(self._cgroup.attempt(attempt.id))
        if attempt.memory is None:
            return
        request["memory_max"] = attempt.memory
        if self._cgroup is not None and self._cgroup.memory:
            request["memory"] = "cgroup"
        elif sys.platform.startswith("linux"):
            request["memory"] = "rlimit"
            attempt.notices.append(resources.rlimit_notice())
        else:
            attempt.notices.append(resources.unenforced_notice())

    def _program(self, plan: Plan) -> str:
        """The component's module file, written once per source so its bytecode is cached too."""
        assert plan.source is not None
        key = hashlib.sha256(plan.source.encode()).hexdigest()[:20]
        with self._lock:
            path = self._programs.get(key)
            if path is None:
                folder = self._tmp / "programs" / key
                folder.mkdir(parents=True, exist_ok=True)
                file = folder / f"{plan.module}.py"
                file.write_text(plan.source, encoding="utf-8")
                path = self._programs[key] = str(file)
        return path

    def _context(self, spec: TaskSpec) -> RunContext:
        run_dir = spec.env.get(_env.RUN_DIR) or str(self.root.runs / spec.run_id)
        with self._lock:
            created = self._run_times.setdefault(
                spec.run_id, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            )
        return RunContext.for_task(
            run_id=spec.run_id,
            task=spec.task,
            pipeline=spec.env.get(_env.PIPELINE),
            pipeline_root=run_dir,
            workspace=os.path.join(run_dir, "workspace"),
            create_time_utc=created,
        )

    def _get_worker(self) -> WorkerProcess:
        with self._lock:
            if self._worker is None or not self._worker.alive:
                self._worker = WorkerProcess(
                    self, self._tmp, self._cgroup.path if self._cgroup else None
                )
            return self._worker

    # -- events from the worker (WorkerEvents: called by its reader thread) ---------------

    def on_started(self, attempt_id: int, pid: int) -> None:
        with self._lock:
            attempt = self._attempts.get(attempt_id)
            if attempt is None:
                return
            attempt.pid = pid
            killed = attempt.reason is not None
        if killed:
            kill_tree(pid)

    def on_exit(self, attempt_id: int, code: int, oom: bool) -> None:
        with self._lock:
            attempt = self._attempts.get(attempt_id)
        if attempt is not None:
            attempt.oom = attempt.oom or oom
            self._done.put((attempt, code))

    def on_worker_died(self, worker: WorkerProcess) -> None:
        with self._lock:
            if self._worker is worker:
                self._worker = None
            orphans = [a for a in self._attempts.values() if a.worker is worker and not a.done]
        why = worker.death_note()
        waiting = []
        for attempt in orphans:
            if attempt.pid is not None:
                waiting.append(attempt)
            elif attempt.sent:
                self._fail(attempt, f"the warm worker died before the task started{why}")
            else:  # _launch is sending it right now: it sees this and retries
                attempt.worker = None
        if waiting:
            threading.Thread(target=self._watch_orphans, args=(waiting,), daemon=True).start()

    def _watch_orphans(self, attempts: list[_Attempt]) -> None:
        """Attempts whose worker died keep running (reparented): wait for them to end."""
        while attempts:
            for attempt in list(attempts):
                assert attempt.pid is not None
                if not _procs.alive(attempt.pid):
                    attempts.remove(attempt)
                    result = read_json(attempt.scratch / "result.json")
                    code = 0 if result.get("ok") else (1 if "error" in result else None)
                    self._done.put((attempt, code))
            time.sleep(0.05)

    # -- ending an attempt ------------------------------------------------------------------

    def _on_deadline(self, attempt: _Attempt) -> None:
        self._kill(attempt, "TIMED_OUT")

    def _kill(self, attempt: _Attempt, reason: OutcomeStatus) -> None:
        with self._lock:
            if attempt.done:
                return
            if attempt.reason is None:
                attempt.reason = reason
            pid, installer = attempt.pid, attempt.installer
        if installer is not None:
            kill_tree(installer.pid)
        if pid is not None:
            kill_tree(pid)
            if self._cgroup is not None:
                cgroups.kill(self._cgroup.attempt(attempt.id))
        # Not started yet: _launch, the install thread or _on_started sees the reason.

    def _finish_loop(self) -> None:
        while True:
            item = self._done.get()
            if item is None:
                return
            self._complete(*item)

    def _fail(self, attempt: _Attempt, error: str) -> None:
        self._complete(attempt, None, error=error)

    def _complete(self, attempt: _Attempt, code: int | None, error: str | None = None) -> None:
        with self._lock:
            if attempt.done:
                return
            attempt.done = True
            self._attempts.pop(attempt.id, None)
            reason = attempt.reason
        spec = attempt.spec
        status: OutcomeStatus = "FAILED"
        output: dict[str, Any] = {}
        if reason == "TIMED_OUT":
            status, error = reason, f"timed out after {spec.timeout:g}s"
        elif reason == "CANCELLED":
            status, error = reason, "cancelled"
        elif error is None:
            try:
                status, output, error = self._judge(attempt, code)
            except Exception as exc:  # the future must resolve whatever happens here
                error = f"internal error in the task runner: {type(exc).__name__}: {exc}"
            if status == "FAILED":
                error = resources.explain(error, attempt.memory, attempt.oom)
        if error is not None and spec.mask:
            error = redact(error, list(spec.mask))
        if error is not None:
            with contextlib.suppress(OSError), open_log(spec.log_path) as log:
                write_line(log, f"[workbench] {status}: {error}")
        attempt.future.set_result(
            TaskOutcome(
                status=status,
                executor_output=output,
                error=error,
                exit_code=code,
                duration_s=time.monotonic() - attempt.started,
                notices=attempt.notices,
            )
        )
        # After the outcome is out (its result file was read above): the next task of a
        # chain need not wait for this.
        shutil.rmtree(attempt.scratch, ignore_errors=True)

    def _judge(
        self, attempt: _Attempt, code: int | None
    ) -> tuple[OutcomeStatus, dict[str, Any], str | None]:
        result = read_json(attempt.scratch / "result.json")
        if code == 0:
            try:
                return "SUCCEEDED", collect_outputs(attempt.executor_input), None
            except OutputError as exc:
                return "FAILED", {}, str(exc)
        if code is None:
            return "FAILED", {}, result.get("error") or "the attempt ended without a result"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = {
                "SIGSEGV": " (segmentation fault)",
                "SIGKILL": " (out of memory, or killed from outside)",
            }.get(name, "")
            return "FAILED", {}, f"killed by {name}{hint}"
        if result.get("error"):
            return "FAILED", {}, result["error"]
        plan = attempt.plan
        if plan is not None and plan.kind == "container":
            found = container.diagnose_exit(code, attempt.spec.log_path, plan.image)
            if found:
                return "FAILED", {}, found
        return "FAILED", {}, f"exited with code {code}"
