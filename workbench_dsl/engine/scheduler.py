"""The scheduler: runs a PipelineSpec's DAG, event driven, on one machine.

One thread owns all state. It blocks on a queue; everything else -- the
task runner's futures, artifact hashing in a small thread pool, retry
timers, signal handlers, the status-file watcher -- only posts events to it.
After each event it starts whatever became ready, up to ``max_parallel``
attempts at once, and writes the changes to the run store.

Semantics follow the KFP backend: a task starts when its upstream tasks have
ended; by default it needs them all to have succeeded (a skipped upstream
skips it, a failed one means it is not run), while a task whose trigger
strategy is ``ALL_UPSTREAM_TASKS_COMPLETED`` (an ``ExitHandler``'s exit task,
``ignore_upstream_failure``) runs anyway. After a task fails for good, no new
task starts (Argo's fail-fast for DAGs) except those; running ones finish.
"""

from __future__ import annotations

import itertools
import json
import queue
import shutil
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench_dsl import _env
from workbench_dsl.engine import attempts as att
from workbench_dsl.engine import conditions, graph
from workbench_dsl.engine import params as ptypes
from workbench_dsl.engine.cache import task_key
from workbench_dsl.engine.cas import ArtifactStore
from workbench_dsl.engine.events import Observers, RunInfo, TaskInfo
from workbench_dsl.engine.graph import (
    CANCELLED,
    FAILED,
    NOT_RUN,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    Node,
    Scope,
)
from workbench_dsl.engine.placeholders import Resolver, RunContext
from workbench_dsl.engine.platform import PlatformPlan
from workbench_dsl.engine.retry import RetryPolicy
from workbench_dsl.engine.spec import PipelineSpec, caching_enabled, iterator_of
from workbench_dsl.engine.store import RunStore
from workbench_dsl.engine.task_api import TaskOutcome, TaskSpec
from workbench_dsl.paths import LocalRoot

_STUB_IMAGES = {"argostub/createpvc": "createpvc", "argostub/deletepvc": "deletepvc"}


@dataclass
class RunOptions:
    cache: bool = True
    max_parallel: int = 8


@dataclass
class RunSummary:
    """What a finished (or cancelled) run produced."""

    run_id: str
    pipeline: str
    status: str
    tasks: list[dict[str, Any]]
    outputs: dict[str, Any]
    failures: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    cost: float = 0.0


class Scheduler:
    """Executes one run (new or resumed) of a pipeline; see the module docstring."""

    def __init__(
        self,
        *,
        spec: PipelineSpec,
        root: LocalRoot,
        run_id: str,
        params: dict[str, Any],
        store: RunStore,
        runner: Any,
        observers: Observers,
        options: RunOptions,
        platform: PlatformPlan,
        created_utc: str,
        resumed: bool = False,
        origin: str | None = None,
    ) -> None:
        self.spec = spec
        self.origin = origin
        self.root = root
        self.run_id = run_id
        self.params = params
        self.store = store
        self.runner = runner
        self.obs = observers
        self.options = options
        self.platform = platform
        self.resumed = resumed
        self.created_utc = created_utc
        self.run_dir = root.runs / run_id
        self.cas = ArtifactStore(root.artifacts)
        self.q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wb-io")
        self.ready: deque[Node] = deque()
        self.running: dict[str, Node] = {}  # qname -> node with an attempt in the runner
        self.inflight_io = 0
        self.timers: dict[str, threading.Timer] = {}
        self.stopping = False
        self.cancelled = False
        self.cancel_reason = ""
        self.root_done = False
        self.seq = itertools.count()
        self.records: dict[str, dict[str, Any]] = {}
        self.dirty: dict[str, dict[str, Any]] = {}
        self.notices: list[str] = []
        self._seen_notices: set[str] = set()
        self.failures: list[dict[str, Any]] = []
        self.prev = {r["task"]: r for r in store.tasks(run_id)} if resumed else {}
        self.status_files: dict[str, Path] = {}
        self._status_lock = threading.Lock()
        self._waiting_retry: dict[str, Node] = {}
        self._warm = False
        self._made_dirs: set[Path] = set()
        self._watch_stop = threading.Event()
        self.root_status = FAILED
        self.job_resource_name = f"{spec.name}-{run_id}"
        self.started = time.time()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Execute the run to its end and return the summary."""
        for sub in ("logs", "work", "status"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.spec.workspace is not None:
            (self.run_dir / "workspace").mkdir(exist_ok=True)
        for n in self.platform.notices:
            self.notice(n)
        self.obs.run_start(
            RunInfo(
                self.run_id,
                self.spec.name,
                self.params,
                str(self.root.root),
                self.resumed,
                origin=self.origin,
            )
        )
        watcher = threading.Thread(target=self._watch_status, name="wb-status", daemon=True)
        watcher.start()
        try:
            root_component = self.spec.root
            self.root_scope = Scope(
                prefix="", component=root_component, params=dict(self.params), artifacts={}
            )
            self._activate(self.root_scope)
            while True:
                self._pump()
                self._flush()
                self._check_stalled()
                if self._finished():
                    break
                self._dispatch(self.q.get())
                while True:  # take whatever else is already queued before writing
                    try:
                        self._dispatch(self.q.get_nowait())
                    except queue.Empty:
                        break
        finally:
            self._watch_stop.set()
            for t in self.timers.values():
                t.cancel()
            self.io.shutdown(wait=True)
        return self._summary()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run: kill running attempts; what has not started stays pending (resumable).

        Safe to call from a signal handler or another thread.
        """
        self.q.put(("cancel", reason))

    def _finished(self) -> bool:
        if self.cancelled:
            return not self.running and self.inflight_io == 0
        return self.root_done and not self.running and self.inflight_io == 0

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "outcome":
            self._on_outcome(event[1], event[2], event[3])
        elif kind == "stored":
            self.inflight_io -= 1
            self._on_stored(event[1], event[2], event[3], event[4])
        elif kind == "imported":
            self.inflight_io -= 1
            self._on_imported(event[1], event[2])
        elif kind == "verified":
            self.inflight_io -= 1
            self._on_verified(event[1], event[2], event[3])
        elif kind == "retry":
            self.timers.pop(event[1].qname, None)
            if not self.cancelled:
                self.ready.appendleft(event[1])
        elif kind == "status":
            self._set_status_line(event[1], event[2])
        elif kind == "cancel":
            self._do_cancel(event[1])

    def _do_cancel(self, reason: str) -> None:
        if self.cancelled:
            return
        self.cancelled = self.stopping = True
        self.cancel_reason = reason
        self.ready.clear()
        for qname, t in list(self.timers.items()):
            t.cancel()
            node = self._waiting_retry.pop(qname, None)
            if node is not None:
                self._finish(node, CANCELLED, "cancelled while waiting to retry")
        self.timers.clear()
        if self.running:
            self.runner.cancel()
        for node in list(self.ready):
            node.status = PENDING

    def _check_stalled(self) -> None:
        if self._finished() or self.running or self.ready or self.inflight_io or self.timers:
            return
        # Nothing can make progress: a bug, but never hang. Fail what is left.
        stuck = [r for r in self.records.values() if r["status"] in (PENDING, RUNNING)]
        for r in stuck:
            r["status"], r["error"] = FAILED, "internal error: the scheduler stalled"
            self.dirty[r["task"]] = r
        self.failures.append(
            {
                "task": "(scheduler)",
                "error": "internal error: the scheduler stalled",
                "log_path": None,
            }
        )
        self.root_done = True
        self.root_status = FAILED

    # -- scopes and nodes ---------------------------------------------------------------------

    def _kind_of(self, task: dict[str, Any], component: dict[str, Any]) -> str:
        if iterator_of(task) is not None:
            return "loop"
        if "dag" in component:
            return "dag"
        label = component.get("executorLabel")
        executor = self.spec.executors.get(label or "") or {}
        if "importer" in executor:
            return "importer"
        image = str((executor.get("container") or {}).get("image") or "")
        if image in _STUB_IMAGES:
            return "stub"
        return "container"

    def _activate(self, scope: Scope) -> None:
        graph.make_nodes(scope, self.spec.components, self._kind_of, self.seq)
        for node in scope.children.values():
            self._record(node, PENDING)
        if not scope.children:
            self._scope_done(scope)
            return
        for node in list(scope.children.values()):
            if node.waiting == 0 and node.status == PENDING:
                self._consider(node)

    def _consider(self, node: Node) -> None:
        """All upstream tasks have ended: decide, resolve inputs, and start the node."""
        if self.cancelled or node.status != PENDING:
            return
        status, reason = graph.dependencies_decision(node)
        if status is None and self.stopping and not node.exempt:
            status, reason = NOT_RUN, "not started: the run is stopping after a failure"
        if status is not None:
            self._finish(node, status, reason)
            return
        try:
            params, arts, absent = graph.resolve_inputs(node, self.job_resource_name)
            params = self._resolve_constants(node, params, arts)
        except (graph.InputError, ValueError) as e:
            self._finish(node, FAILED, f"cannot resolve inputs: {e}")
            return
        node.params, node.artifacts = params, arts
        condition = (node.task.get("triggerPolicy") or {}).get("condition")
        if condition:
            try:
                ok = conditions.evaluate(condition, params)
            except conditions.ConditionError as e:
                self._finish(node, FAILED, f"condition: {e}")
                return
            if not ok:
                self._finish(node, SKIPPED, f"condition is false: {condition}")
                return
        node.started = time.time()
        if node.kind in ("dag", "loop"):
            self._start_group(node, absent)
        elif node.kind == "importer":
            self._start_importer(node)
        elif node.kind == "stub":
            self._run_stub(node)
        else:
            self._prepare_container(node, absent)

    def _group_inputs(self, node: Node) -> dict[str, Any]:
        defs = (node.component.get("inputDefinitions") or {}).get("parameters") or {}
        out = dict(node.params)
        for name, d in defs.items():
            if name in out:
                try:
                    out[name] = ptypes.coerce(out[name], d.get("parameterType"))
                except ptypes.ParameterTypeError:
                    pass
            else:
                has, default = ptypes.default_of(d)
                if has:
                    out[name] = default
        return out

    def _start_group(self, node: Node, absent: list[str]) -> None:
        node.status = RUNNING
        self._record(node, RUNNING)
        params = self._group_inputs(node)
        if node.kind == "dag":
            node.child = Scope(
                prefix=f"{node.qname}/",
                component=node.component,
                params=params,
                artifacts=dict(node.artifacts),
                owner=node,
                exempt=node.exempt,
                qname=node.qname,
            )
            self._activate(node.child)
            return
        node.params = params
        try:
            node.items = graph.loop_items(node)
        except graph.InputError as e:
            self._finish(node, FAILED, str(e))
            return
        if not node.items:
            self._loop_done(node)
            return
        self._start_iterations(node)

    def _start_iterations(self, node: Node) -> None:
        it = iterator_of(node.task) or {}
        item_input = it.get("itemInput", "")
        limit = graph.parallelism(node) or len(node.items)
        defs = (node.component.get("inputDefinitions") or {}).get("parameters") or {}
        while node.active_iterations < limit and node.next_iteration < len(node.items):
            if self.cancelled or (self.stopping and not node.exempt):
                break
            i = node.next_iteration
            node.next_iteration += 1
            item = node.items[i]
            params = dict(node.params)
            arts = dict(node.artifacts)
            if it.get("kind") == "artifact":
                arts[item_input] = [item]
            else:
                ptype = (defs.get(item_input) or {}).get("parameterType")
                try:
                    params[item_input] = ptypes.coerce(item, ptype) if ptype else item
                except ptypes.ParameterTypeError:
                    params[item_input] = item
            name = graph.iteration_name(node, i)
            scope = Scope(
                prefix=f"{name}/",
                component=node.component,
                params=params,
                artifacts=arts,
                owner=node,
                exempt=node.exempt,
                index=i,
                qname=name,
            )
            node.iterations.append(scope)
            node.active_iterations += 1
            self._record_row(
                name, "iteration", RUNNING, parent=node.qname, component=node.comp_name
            )
            self._activate(scope)
        if node.active_iterations == 0 and node.status == RUNNING:
            self._loop_done(node)

    def _scope_done(self, scope: Scope) -> None:
        owner = scope.owner
        if owner is None:
            self.root_done = True
            self.root_status = graph.scope_status(list(scope.children.values()))
            return
        status = graph.scope_status(list(scope.children.values()))
        if owner.kind == "dag":
            owner.out_params, owner.out_artifacts = graph.dag_outputs(scope)
            self._finish(owner, status, self._group_reason(status, scope))
            return
        # One iteration of a ParallelFor ended.
        self._record_row(
            scope.qname, "iteration", status, parent=owner.qname, component=owner.comp_name
        )
        owner.active_iterations -= 1
        if owner.status == RUNNING:
            self._start_iterations(owner)

    @staticmethod
    def _group_reason(status: str, scope: Scope) -> str | None:
        if status == SUCCEEDED:
            return None
        bad = [c.qname for c in scope.children.values() if c.status == status]
        return f"{status.lower().replace('_', ' ')}: {', '.join(bad[:3])}"

    def _loop_done(self, node: Node) -> None:
        if node.status != RUNNING:
            return
        started = node.iterations
        statuses = [graph.scope_status(list(s.children.values())) for s in started]
        never = len(node.items) - len(started)
        node.out_params, node.out_artifacts = graph.collect_iterations(node)
        status = SUCCEEDED
        for s in (FAILED, CANCELLED, NOT_RUN):
            if s in statuses:
                status = s
                break
        if status == SUCCEEDED and never:
            status = CANCELLED if self.cancelled else NOT_RUN
        reason = (
            None
            if status == SUCCEEDED
            else f"{statuses.count(status) or never} iteration(s) {status.lower()}"
        )
        self._finish(node, status, reason)

    def _finish(
        self, node: Node, status: str, reason: str | None = None, *, persisted: bool = False
    ) -> None:
        """A node reached a final state: record it and let its dependents go."""
        if node.status in graph.TERMINAL:
            return
        node.status = status
        node.finished = time.time()
        if status in (FAILED,) and reason and node.error is None:
            node.error = reason
        node.reason = reason
        if status == FAILED and node.kind == "container" and node.error:
            node.error += _remote_hint(node)
        if status == FAILED and node.is_executor:
            self.failures.append(
                {"task": node.qname, "error": node.error, "log_path": node.log_path}
            )
        if status == FAILED:
            self.stopping = True
        if status in (SKIPPED, NOT_RUN) and node.kind == "dag":
            self._record_descendants(node.component, f"{node.qname}/", status, reason, node.qname)
        self._record(node, status)
        if persisted:
            self.dirty.pop(node.qname, None)
        if node.is_executor:
            self.obs.task_end(self._task_info(node))
        scope = node.scope
        scope.remaining -= 1
        for name in node.downstream:
            down = scope.children[name]
            down.waiting -= 1
            if down.waiting == 0:
                self._consider(down)
        if scope.remaining == 0:
            self._scope_done(scope)

    # -- containers ---------------------------------------------------------------------------

    def _resolve_constants(
        self, node: Node, params: dict[str, Any], arts: dict[str, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Resolve placeholders in string inputs (job/task names, f-strings) as the driver does."""
        todo = {k: v for k, v in params.items() if isinstance(v, str) and "{{$" in v}
        if not todo:
            return params
        ei = {
            "inputs": {
                "parameterValues": {k: v for k, v in params.items() if k not in todo},
                "artifacts": {k: {"artifacts": v} for k, v in arts.items()},
            },
            "outputs": {},
        }
        resolver = Resolver(ei, self._context(node))
        out = dict(params)
        for k, v in todo.items():
            out[k] = resolver.resolve_string(v)
        return out

    def _context(self, node: Node) -> RunContext:
        return RunContext.for_task(
            run_id=self.run_id,
            task=node.qname,
            pipeline=self.spec.name,
            pipeline_root=str(self.run_dir),
            workspace=str(self.run_dir / "workspace"),
            create_time_utc=self.created_utc,
        )

    def _executor(self, node: Node) -> tuple[str, dict[str, Any]]:
        label = str(node.component.get("executorLabel") or "")
        return label, self.spec.executor(label)

    def _prepare_container(self, node: Node, absent: list[str]) -> None:
        params, errors = att.typed_inputs(node.component, node.params, absent)
        errors += att.check_artifacts(node.component, node.artifacts, absent)
        if errors:
            self._finish(node, FAILED, "; ".join(errors))
            return
        node.params = params
        label, executor = self._executor(node)
        plat = self.platform.for_executor(label)
        node.cost_per_hour = plat.cost_per_hour
        field_env = plat.env_for(node.qname)
        node.key = task_key(node.component, executor, field_env, params, node.artifacts)
        node.status = RUNNING
        prev = self.prev.get(node.qname)
        node.attempts = int(prev["attempts"] or 0) if prev is not None else 0
        if prev is not None and prev["status"] == SUCCEEDED and prev["input_key"] == node.key:
            self._verify(node, ptypes_json(prev["outputs_json"]), "reused")
            return
        if self.options.cache and caching_enabled(node.task):
            entry = self.store.cache_get(node.key)
            if entry is not None:
                self._verify(node, entry, "cached")
                return
        self._record(node, PENDING)
        self.ready.append(node)

    def _verify(self, node: Node, entry: dict[str, Any], source: str) -> None:
        """Use stored outputs after checking their artifacts (in the I/O pool when there are any)."""
        arts = [a for v in (entry.get("artifacts") or {}).values() for a in v if a.get("sha256")]
        if not arts:
            self._on_verified(node, entry, source)
            return
        self.inflight_io += 1

        def check() -> None:
            ok = all(self.cas.verify(a["uri"], a["sha256"], a.get("size")) for a in arts)
            self.q.put(("verified", node, entry if ok else None, source))

        self.io.submit(check)

    def _on_verified(self, node: Node, entry: dict[str, Any] | None, source: str) -> None:
        if entry is None:
            if source == "cached" and node.key:
                self.store.cache_drop(node.key)
            self.notice(
                f"{source} outputs of {node.qname} failed verification (an artifact is missing "
                f"or changed); running it again"
            )
            self._record(node, PENDING)
            self.ready.append(node)
            return
        node.out_params = dict(entry.get("parameters") or {})
        node.out_artifacts = dict(entry.get("artifacts") or {})
        if source == "cached":
            node.cached = True
            if node.key:
                self.store.cache_hit(node.key)
        else:
            node.reused = True
        node.duration_s = (
            0.0
            if source == "cached"
            else float((self.prev.get(node.qname) or {"duration_s": 0})["duration_s"] or 0)
        )
        self.obs.task_start(self._task_info(node))
        self._finish(node, SUCCEEDED)

    def _pump(self) -> None:
        if self.ready and not self._warm:
            # Start the warm worker at the first task that must really run: a
            # fully cached run never waits for one to start (or stop).
            self._warm = True
            warmup = getattr(self.runner, "warmup", None)
            if warmup is not None:
                warmup()
        while self.ready and len(self.running) < self.options.max_parallel and not self.cancelled:
            node = self.ready.popleft()
            self._submit(node)

    def _paths(self, node: Node, attempt: int) -> tuple[Path, Path, Path]:
        rel = att.safe_path(node.qname)
        workdir = self.run_dir / "work" / rel / f"attempt-{attempt}"
        log = self.run_dir / "logs" / f"{rel}.{attempt}.log"
        status = self.run_dir / "status" / f"{rel}.txt"
        return workdir, log, status

    def _submit(self, node: Node) -> None:
        node.attempts += 1
        attempt = node.attempts
        workdir, log, status_file = self._paths(node, attempt)
        if workdir.exists():
            from workbench_dsl.engine.cas import remove

            remove(workdir)
        for d in (log.parent, status_file.parent):
            if d not in self._made_dirs:
                d.mkdir(parents=True, exist_ok=True)
                self._made_dirs.add(d)
        label, executor = self._executor(node)
        plat = self.platform.for_executor(label)
        env = {
            str(e.get("name")): str(e.get("value", ""))
            for e in (executor.get("container") or {}).get("env") or []
            if e.get("name")
        }
        env.update(plat.env_for(node.qname))
        env.update(
            {
                _env.ENGINE: "local",
                _env.HOME: str(self.root.root),
                _env.RUN_ID: self.run_id,
                _env.PIPELINE: self.spec.name,
                _env.TASK: node.qname,
                _env.ATTEMPT: str(attempt),
                _env.RUN_DIR: str(self.run_dir),
                _env.STATUS_FILE: str(status_file),
            }
        )
        ei = att.executor_input(node.component, node.params, node.artifacts, workdir)
        spec = TaskSpec(
            run_id=self.run_id,
            task=node.qname,
            attempt=attempt,
            executor=executor,
            executor_input=ei,
            env=env,
            workdir=workdir,
            log_path=log,
            timeout=plat.timeout,
        )
        node.log_path = str(log)
        if node.started is None:
            node.started = time.time()
        # Known before the attempt's row is written, so `runs show` from another process
        # can read a running task's status line (e.g. "waiting for approval: ...").
        with self._status_lock:
            self.status_files[node.qname] = status_file
        self.store.start_attempt(
            self.run_id,
            node.qname,
            attempt,
            str(log),
            str(workdir),
            self._row(node, RUNNING),
        )
        node.status = RUNNING
        self.records[node.qname]["status"] = RUNNING
        self.dirty.pop(node.qname, None)  # the attempt's row above is newer
        self.running[node.qname] = node
        if attempt == 1 or node.retries_done == 0:
            self.obs.task_start(self._task_info(node))
        try:
            future: Future[TaskOutcome] = self.runner.submit(spec)
        except Exception as e:  # the runner refused outright (closed): fail this attempt
            future = Future()
            future.set_result(TaskOutcome(status="FAILED", error=f"task runner: {e}"))

        def done(f: Future[TaskOutcome], n: Node = node, a: int = attempt) -> None:
            self.q.put(("outcome", n, a, f))

        future.add_done_callback(done)

    def _on_outcome(self, node: Node, attempt: int, future: Future[TaskOutcome]) -> None:
        self.running.pop(node.qname, None)
        try:
            outcome = future.result()
        except Exception as e:
            outcome = TaskOutcome(
                status="FAILED", error=f"task runner error: {type(e).__name__}: {e}"
            )
        for n in outcome.notices:
            self.notice(n)
        node.duration_s += outcome.duration_s
        if outcome.status == "SUCCEEDED":
            self.inflight_io += 1
            workdir, _, _ = self._paths(node, attempt)

            def store() -> None:
                try:
                    out_params = att.output_parameters(node.component, outcome.executor_output)
                    out_arts, notes = att.store_outputs(
                        node.component, outcome.executor_output, workdir, self.cas
                    )
                    result: Any = (out_params, out_arts, notes)
                except Exception as e:  # an output that does not fit fails the attempt
                    result = e
                self.q.put(("stored", node, attempt, outcome, result))

            self.io.submit(store)
            return
        self._attempt_failed(node, attempt, outcome)

    def _attempt_failed(self, node: Node, attempt: int, outcome: TaskOutcome) -> None:
        status = (
            outcome.status if outcome.status in ("FAILED", "TIMED_OUT", "CANCELLED") else "FAILED"
        )
        error = outcome.error or status.lower()
        node.error = error
        self.store.finish_attempt(
            self.run_id,
            node.qname,
            attempt,
            status,
            outcome.duration_s,
            outcome.exit_code,
            error,
            task_fields={"error": error, "duration_s": node.duration_s},
        )
        if status == "CANCELLED" or self.cancelled:
            self._finish(node, CANCELLED, error)
            return
        policy = RetryPolicy.of(node.task)
        elapsed = time.time() - (node.started or time.time())
        if policy.allows(node.retries_done + 1, elapsed) and not (
            self.stopping and not node.exempt
        ):
            node.retries_done += 1
            delay = policy.delay(node.retries_done)
            self._waiting_retry[node.qname] = node
            self.notice_task(
                node, f"attempt {attempt} {status.lower()}: {error}; retrying in {delay:g}s"
            )
            timer = threading.Timer(delay, lambda n=node: self._retry_due(n))
            timer.daemon = True
            self.timers[node.qname] = timer
            timer.start()
            return
        self._finish(node, FAILED, error)

    def _retry_due(self, node: Node) -> None:
        self._waiting_retry.pop(node.qname, None)
        self.q.put(("retry", node))

    def _on_stored(self, node: Node, attempt: int, outcome: TaskOutcome, result: Any) -> None:
        if isinstance(result, Exception):
            msg = (
                str(result)
                if isinstance(result, att.OutputProblem)
                else (f"storing outputs failed: {type(result).__name__}: {result}")
            )
            self._attempt_failed(
                node, attempt, TaskOutcome(status="FAILED", error=msg, duration_s=0.0)
            )
            return
        out_params, out_arts, notes = result
        for n in notes:
            self.notice(n)
        node.out_params, node.out_artifacts = out_params, out_arts
        outputs = {"parameters": out_params, "artifacts": out_arts}
        cache_entry = None
        if node.key and caching_enabled(node.task):
            cache_entry = {
                "key": node.key,
                "pipeline": self.spec.name,
                "component": node.comp_name,
                "outputs": outputs,
            }
        node.status = SUCCEEDED
        node.finished = time.time()
        row = self._row(node, SUCCEEDED)
        row["outputs_json"] = outputs
        row["status_line"] = self._read_status_line(node.qname)
        flat = [dict(a, name=a.get("name") or k) for k, v in out_arts.items() for a in v]
        self.store.finish_attempt(
            self.run_id,
            node.qname,
            attempt,
            "SUCCEEDED",
            outcome.duration_s,
            outcome.exit_code,
            None,
            task_fields=row,
            artifacts=flat,
            cache_entry=cache_entry,
        )
        node.status = RUNNING  # _finish makes it SUCCEEDED
        self._finish(node, SUCCEEDED, persisted=True)
        workdir, _, _ = self._paths(node, attempt)
        self.io.submit(shutil.rmtree, workdir, True)

    # -- importers and stubs -----------------------------------------------------------------------

    def _start_importer(self, node: Node) -> None:
        _, executor = self._executor(node)
        imp = executor.get("importer") or {}
        src = imp.get("artifactUri") or {}
        if "runtimeParameter" in src:
            uri = node.params.get(src["runtimeParameter"])
        else:
            uri = src.get("constant")
            if isinstance(uri, dict):
                uri = uri.get("stringValue") or next(iter(uri.values()), None)
        if not uri:
            self._finish(node, FAILED, "importer: no artifact URI")
            return
        metadata = self._resolve_struct(node, imp.get("metadata") or {})
        type_schema = dict(imp.get("typeSchema") or {})
        node.status = RUNNING
        node.key = task_key(node.component, executor, {}, {"uri": uri, "metadata": metadata}, {})
        self._record(node, RUNNING)
        self.obs.task_start(self._task_info(node))
        self.inflight_io += 1

        def work() -> None:
            try:
                result: Any = att.import_artifact(str(uri), type_schema, metadata, self.cas)
            except Exception as e:
                result = e
            self.q.put(("imported", node, result))

        self.io.submit(work)

    def _resolve_struct(self, node: Node, value: Any) -> Any:
        if isinstance(value, str) and "{{$" in value:
            ei = {"inputs": {"parameterValues": node.params, "artifacts": {}}, "outputs": {}}
            try:
                return Resolver(ei, self._context(node)).resolve_string(value)
            except ValueError:
                return value
        if isinstance(value, dict):
            return {
                self._resolve_struct(node, k): self._resolve_struct(node, v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._resolve_struct(node, v) for v in value]
        return value

    def _on_imported(self, node: Node, result: Any) -> None:
        if isinstance(result, Exception):
            node.error = (
                str(result)
                if isinstance(result, FileNotFoundError)
                else (f"importer failed: {type(result).__name__}: {result}")
            )
            self._finish(node, FAILED, node.error)
            return
        entry, note = result
        if note:
            self.notice(note)
        node.out_artifacts = {"artifact": [entry]}
        row = self._row(node, SUCCEEDED)
        row["outputs_json"] = {"parameters": {}, "artifacts": node.out_artifacts}
        self.store.upsert_task(self.run_id, node.qname, row)
        self._finish(node, SUCCEEDED)

    def _run_stub(self, node: Node) -> None:
        _, executor = self._executor(node)
        what = _STUB_IMAGES[str((executor.get("container") or {}).get("image"))]
        if what == "createpvc":
            name = (
                node.params.get("pvc_name")
                or f"{self.job_resource_name}{node.params.get('pvc_name_suffix', '-pvc')}"
            )
            node.out_params = {"name": name}
        self.notice(f"kfp-kubernetes {what} is a no-op locally (no volumes here)")
        self.obs.task_start(self._task_info(node))
        row = self._row(node, SUCCEEDED)
        row["outputs_json"] = {"parameters": node.out_params, "artifacts": {}}
        self.store.upsert_task(self.run_id, node.qname, row)
        self._finish(node, SUCCEEDED)

    # -- records, events, outputs --------------------------------------------------------------------

    def notice(self, message: str) -> None:
        if message in self._seen_notices:
            return
        self._seen_notices.add(message)
        self.notices.append(message)
        self.obs.notice(message)

    def notice_task(self, node: Node, message: str) -> None:
        self.obs.notice(f"{node.qname}: {message}")

    def _row(self, node: Node, status: str) -> dict[str, Any]:
        label = node.component.get("executorLabel")
        duration = node.duration_s
        row: dict[str, Any] = {
            "seq": node.seq,
            "parent": node.scope.qname or None,
            "kind": node.kind,
            "component": node.comp_name,
            "executor": label,
            "status": status,
            "cached": node.cached,
            "reused": node.reused,
            "attempts": node.attempts,
            "started_at": node.started,
            "finished_at": node.finished if status in graph.TERMINAL else None,
            "duration_s": round(duration, 6),
            "cost_per_hour": node.cost_per_hour,
            "cost": round(duration * node.cost_per_hour / 3600.0, 8),
            "error": node.error
            if status in (FAILED, CANCELLED)
            else (node.reason if status in (SKIPPED, NOT_RUN) else None),
            "log_path": node.log_path,
            "input_key": node.key,
            "cache_key": node.key if caching_enabled(node.task) else None,
        }
        if node.is_executor and node.status != PENDING:
            row["inputs_json"] = {"parameters": node.params, "artifacts": node.artifacts}
        status_file = self.status_files.get(node.qname)
        if status_file is not None:
            row["status_file"] = str(status_file)
        return row

    def _record(self, node: Node, status: str) -> None:
        row = self._row(node, status)
        if node.status in graph.TERMINAL and node.is_executor and status == SUCCEEDED:
            row["outputs_json"] = {"parameters": node.out_params, "artifacts": node.out_artifacts}
        rec = self.records.setdefault(node.qname, {"task": node.qname})
        rec.update(row, name=node.qname)
        self.dirty[node.qname] = row

    def _record_row(self, qname: str, kind: str, status: str, **extra: Any) -> None:
        row = {"seq": next(self.seq), "kind": kind, "status": status, **extra}
        rec = self.records.setdefault(qname, {"task": qname})
        seq = rec.get("seq")
        rec.update(row, name=qname)
        if seq is not None:
            rec["seq"] = row["seq"] = seq
        self.dirty[qname] = row

    def _record_descendants(
        self, component: dict[str, Any], prefix: str, status: str, reason: str | None, parent: str
    ) -> None:
        """List the tasks inside a skipped group too, so every task of the pipeline shows up."""
        for name, task in sorted(((component.get("dag") or {}).get("tasks") or {}).items()):
            comp_name = str((task.get("componentRef") or {}).get("name") or "")
            comp = self.spec.components.get(comp_name) or {}
            kind = self._kind_of(task, comp)
            qname = f"{prefix}{name}"
            self._record_row(
                qname,
                kind,
                status,
                parent=parent,
                component=comp_name,
                executor=comp.get("executorLabel"),
                error=reason,
            )
            if kind == "dag":
                self._record_descendants(comp, f"{qname}/", status, reason, qname)

    def _flush(self) -> None:
        if not self.dirty:
            return
        rows = list(self.dirty.items())
        self.dirty.clear()
        self.store.upsert_tasks(self.run_id, rows)

    def _task_info(self, node: Node) -> TaskInfo:
        label = node.component.get("executorLabel")
        executor = self.spec.executors.get(label or "") or {}
        container = executor.get("container") or {}
        command = [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]
        source = None
        for part in container.get("command") or []:
            if (
                isinstance(part, str)
                and ("def " in part or "import " in part)
                and "\n" in part
                and "executor_main" not in part
            ):
                source = part
        return TaskInfo(
            run_id=self.run_id,
            task=node.qname,
            name=node.display,
            component=node.comp_name,
            executor=label,
            kind=node.kind,
            status=node.status,
            cached=node.cached,
            reused=node.reused,
            attempt=node.attempts,
            inputs={"parameters": node.params, "artifacts": node.artifacts},
            outputs={"parameters": node.out_params, "artifacts": node.out_artifacts},
            command=command,
            source=source,
            image=container.get("image"),
            error=node.error if node.status in (FAILED, CANCELLED) else None,
            log_path=node.log_path,
            duration_s=node.duration_s,
            cost=node.duration_s * node.cost_per_hour / 3600.0,
        )

    # -- status lines ------------------------------------------------------------------------------

    def _watch_status(self) -> None:
        seen: dict[str, float] = {}
        while not self._watch_stop.wait(0.5):
            with self._status_lock:
                files = {q: p for q, p in self.status_files.items() if q in self.running}
            for qname, path in files.items():
                try:
                    mtime = path.stat().st_mtime
                except OSError:
                    continue
                if seen.get(qname) == mtime:
                    continue
                seen[qname] = mtime
                line = _read_line(path)
                if line:
                    self.q.put(("status", qname, line))

    def _set_status_line(self, qname: str, line: str) -> None:
        self.obs.task_status(qname, line)

    def _read_status_line(self, qname: str) -> str | None:
        with self._status_lock:
            path = self.status_files.get(qname)
        return _read_line(path) if path is not None else None

    # -- the end ------------------------------------------------------------------------------------

    def _summary(self) -> RunSummary:
        if self.cancelled:
            status = CANCELLED
        else:
            status = SUCCEEDED if getattr(self, "root_status", FAILED) == SUCCEEDED else FAILED
        outputs = self.pipeline_outputs()
        tasks = [
            {
                "name": r["task"],
                "status": r["status"],
                "cached": bool(r.get("cached")),
                "attempts": int(r.get("attempts") or 0),
                "duration_s": round(float(r.get("duration_s") or 0.0), 3),
            }
            for r in sorted(self.records.values(), key=_run_order)
            if r.get("kind") in ("container", "importer", "stub")
        ]
        cost = sum(float(r.get("cost") or 0.0) for r in self.records.values())
        return RunSummary(
            run_id=self.run_id,
            pipeline=self.spec.name,
            status=status,
            tasks=tasks,
            outputs=outputs,
            failures=self.failures,
            notices=self.notices,
            duration_s=time.time() - self.started,
            cost=cost,
        )

    def pipeline_outputs(self) -> dict[str, Any]:
        scope = getattr(self, "root_scope", None)
        if scope is None:
            return {}
        params, arts = graph.dag_outputs(scope)
        out_defs = self.spec.root.get("outputDefinitions") or {}
        pdefs = out_defs.get("parameters") or {}
        adefs = out_defs.get("artifacts") or {}
        result: dict[str, Any] = {}
        for name, value in params.items():
            try:
                result[name] = ptypes.output_value(
                    value, (pdefs.get(name) or {}).get("parameterType")
                )
            except ptypes.ParameterTypeError:
                result[name] = value
        for name, listed in arts.items():
            shown = [artifact_view(a) for a in listed]
            result[name] = shown if (adefs.get(name) or {}).get("isArtifactList") else shown[0]
        return result


def _run_order(r: dict[str, Any]) -> tuple[float, int]:
    """Tasks in the order they started; those that never did, in spec order, after them."""
    started = r.get("started_at")
    return (float(started) if started is not None else float("inf"), int(r.get("seq") or 0))


def _remote_hint(node: Node) -> str:
    """Why a task that read a remote input artifact probably failed."""
    for name, listed in node.artifacts.items():
        for a in listed:
            uri = str(a.get("uri") or "")
            if not a.get("sha256") and not a.get("absent") and att.local_path(uri) is None:
                return (
                    f" (input {name} is the remote artifact {uri}, not available on this machine)"
                )
    return ""


def artifact_view(a: dict[str, Any]) -> dict[str, Any]:
    """An artifact as the CLI and the Python API show it."""
    view = {
        "uri": a.get("uri"),
        "path": a.get("uri") if a.get("sha256") or a.get("absent") else None,
        "type": (a.get("type") or {}).get("schemaTitle"),
        "metadata": a.get("metadata") or {},
        "sha256": a.get("sha256"),
        "size": a.get("size"),
    }
    return view


def ptypes_json(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}


def _read_line(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(400)
    except OSError:
        return None
    text = text.strip().replace("\n", " ")
    return text or None


def install_signal_handlers(scheduler: Scheduler) -> Any:
    """Ctrl-C and SIGTERM cancel the run cleanly (main thread only); returns a restore function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        name = "interrupted (Ctrl-C)" if signum == signal.SIGINT else "terminated (SIGTERM)"
        scheduler.cancel(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass

    def restore() -> None:
        for sig, h in previous.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError):
                pass

    return restore
