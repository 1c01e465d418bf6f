"""The loop: one thread takes typed messages off one queue and moves tasks between states.

Semantics follow the KFP backend: a task starts when its upstream tasks have
ended; by default it needs them all to have succeeded (a skipped upstream
skips it, a failed one means it is not run), while a task whose trigger
strategy is ``ALL_UPSTREAM_TASKS_COMPLETED`` (an ``ExitHandler``'s exit task,
``ignore_upstream_failure``) runs anyway. After a task fails for good, no new
task starts (Argo's fail-fast for DAGs) except those; running ones finish.

How it runs: the loop blocks on the queue, handles every message already
there (handlers post follow-up messages instead of calling each other, see
:mod:`.messages`), then writes the changed rows in one transaction and only
then starts whatever became ready, up to ``max_parallel`` attempts at once. Each message
costs a bounded amount of work, so the cost per task does not grow with the
size of the run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from workbench_dsl.engine import conditions, graph, kube_objects
from workbench_dsl.engine.cache import KeyCache
from workbench_dsl.engine.cas import ArtifactStore
from workbench_dsl.engine.events import Observers, RunInfo, TaskInfo
from workbench_dsl.engine.graph import Node, Scope
from workbench_dsl.engine.orchestrator import importers, launch, scopes
from workbench_dsl.engine.orchestrator import messages as m
from workbench_dsl.engine.orchestrator.recorder import Recorder
from workbench_dsl.engine.orchestrator.states import TaskState, check
from workbench_dsl.engine.orchestrator.status_lines import StatusWatcher
from workbench_dsl.engine.orchestrator.summary import RunOptions, RunSummary, summarize
from workbench_dsl.engine.platform import PlatformPlan
from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.engine.store import RunStore
from workbench_dsl.engine.task_api import TaskOutcome, TaskSpec
from workbench_dsl.paths import LocalRoot

S = TaskState
_STALLED = "internal error: the scheduler stalled"


class TaskRunner(Protocol):
    """What the loop needs of the task runner (``engine/runner.py``'s ``TaskRunner``)."""

    def submit(self, spec: TaskSpec) -> Future[TaskOutcome]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class Orchestrator:
    """Executes one run (new or resumed) of a pipeline; see the module docstring."""

    def __init__(
        self,
        *,
        spec: PipelineSpec,
        root: LocalRoot,
        run_id: str,
        params: dict[str, Any],
        store: RunStore,
        runner: TaskRunner,
        observers: Observers,
        options: RunOptions,
        platform: PlatformPlan,
        created_utc: str,
        resumed: bool = False,
        origin: str | None = None,
        inputs: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.spec = spec
        self.inputs = dict(inputs or {})
        # Values of the secrets tasks read: kept out of everything the engine records.
        self.secret_values: list[str] = []
        self.origin = origin
        self.root = root
        self.run_id = run_id
        self.params = params
        self.runner = runner
        self.obs = observers
        self.options = options
        self.platform = platform
        self.resumed = resumed
        self.created_utc = created_utc
        self.run_dir = root.runs / run_id
        self.cas = ArtifactStore(root.artifacts)
        self.recorder = Recorder(store, run_id)
        self.keys = KeyCache()  # cache keys, each executor encoded once
        self.shapes: dict[int, Any] = {}  # each DAG's tasks, worked out once (graph.make_nodes)
        self.queue: queue.SimpleQueue[m.Message] = queue.SimpleQueue()
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wb-io")
        self.ready: deque[Node] = deque()  # READY nodes, in the order they became ready
        self.running: dict[str, Node] = {}  # qname -> node with an attempt in the runner
        self.inflight_io = 0
        self.timers: dict[str, threading.Timer] = {}
        self.waiting_retry: dict[str, Node] = {}  # qname -> node in WAITING_TO_RETRY
        self.stopping = False  # a task failed for good: start nothing new but exempt tasks
        self.cancelled = False
        self.cancel_reason = ""
        self.root_done = False
        self.root_status = graph.FAILED
        self.root_scope: Scope | None = None
        self.seq = iter(range(1, 1 << 62))
        self.notices: list[str] = []
        self._seen_notices: set[str] = set()
        self.failures: list[dict[str, Any]] = []
        self.prev = store.resume_state(run_id) if resumed else {}
        self.warm = False
        self.made_dirs: set[Path] = set()
        self._executor_facts: dict[Any, tuple[list[str], str | None, str | None]] = {}
        self.job_resource_name = f"{spec.name}-{run_id}"
        self.started = time.time()
        self.watcher = StatusWatcher(
            self.recorder.status_files, self.running, self.post, self.mask_secrets
        )

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
        try:
            self.root_scope = Scope(
                prefix="",
                component=self.spec.root,
                params=dict(self.params),
                artifacts=dict(self.inputs),
            )
            scopes.activate(self, self.root_scope)
            while True:
                self._drain()
                # What the messages changed is committed before any attempt starts, so
                # the store never shows a task running while its upstream looks pending.
                self.recorder.flush()
                self._pump()
                self._check_stalled()
                if self._finished():
                    break
                self._dispatch(self.queue.get())
        finally:
            self.watcher.stop()
            for t in self.timers.values():
                t.cancel()
            self.io.shutdown(wait=True)
        return summarize(self)

    def post(self, message: m.Message) -> None:
        """Hand the loop a message; safe from any thread (the task runner, timers, signals)."""
        self.queue.put(message)

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run: kill running attempts; what has not started stays pending (resumable).

        Safe to call from a signal handler or another thread.
        """
        self.post(m.Cancel(reason))

    def _drain(self) -> None:
        get = self.queue.get_nowait
        dispatch = self._dispatch
        while True:
            try:
                message = get()
            except queue.Empty:
                return
            dispatch(message)

    def _finished(self) -> bool:
        if self.running or self.inflight_io or not self.queue.empty():
            return False
        return self.cancelled or self.root_done

    def _dispatch(self, msg: m.Message) -> None:
        if isinstance(msg, m.FROM_IO):
            self.inflight_io -= 1
        if isinstance(msg, m.Consider):
            self._consider(msg.node)
        elif isinstance(msg, m.ScopeEnded):
            scopes.scope_ended(self, msg.scope)
        elif isinstance(msg, m.CacheChecked):
            launch.on_checked(self, msg.node, msg.entry, msg.source)
        elif isinstance(msg, m.AttemptEnded):
            launch.on_attempt_ended(self, msg.node, msg.attempt, msg.future)
        elif isinstance(msg, m.OutputsStored):
            launch.on_stored(self, msg.node, msg.attempt, msg.outcome, msg.result)
        elif isinstance(msg, m.Imported):
            importers.on_imported(self, msg.node, msg.result)
        elif isinstance(msg, m.RetryDue):
            self.timers.pop(msg.node.qname, None)
            if not self.cancelled and msg.node.state is S.WAITING_TO_RETRY:
                self.waiting_retry.pop(msg.node.qname, None)
                self.transition(msg.node, S.READY)
                self.ready.appendleft(msg.node)
        elif isinstance(msg, m.StatusLine):
            self._on_status_line(msg.task, msg.line)
        elif isinstance(msg, m.ApprovalWaiting):
            self._on_approval(msg.task, msg.waiting)
        elif isinstance(msg, m.Cancel):
            self._do_cancel(msg.reason)

    def _pump(self) -> None:
        if self.ready and not self.warm:
            # Start the warm worker at the first task that must really run: a
            # fully cached run never waits for one to start (or stop).
            self.warm = True
            self.watcher.start()  # status lines come from running tasks only
            warmup = getattr(self.runner, "warmup", None)
            if warmup is not None:
                warmup()
        while self.ready and len(self.running) < self.options.max_parallel and not self.cancelled:
            launch.submit(self, self.ready.popleft())

    def _check_stalled(self) -> None:
        if self._finished() or self.running or self.ready or self.inflight_io or self.timers:
            return
        if not self.queue.empty():
            return
        # Nothing can make progress: a bug, but never hang. Fail what is left.
        for node in list(self.recorder.nodes.values()):
            if not node.state.terminal:
                node.error = _STALLED
                self.transition(node, S.FAILED)
        self.recorder.fail_unfinished(_STALLED)
        self.recorder.flush()
        self.failures.append({"task": "(scheduler)", "error": _STALLED, "log_path": None})
        self.root_done = True
        self.root_status = graph.FAILED

    def _do_cancel(self, reason: str) -> None:
        if self.cancelled:
            return
        self.cancelled = self.stopping = True
        self.cancel_reason = reason
        for node in self.ready:  # what has not started stays pending: a resume starts it
            self.transition(node, S.PENDING)
        self.ready.clear()
        for qname, t in list(self.timers.items()):
            t.cancel()
            waiting = self.waiting_retry.pop(qname, None)
            if waiting is not None:
                self.finish(waiting, S.CANCELLED, "cancelled while waiting to retry")
        self.timers.clear()
        if self.running:
            self.runner.cancel()

    # -- the one place a state changes -----------------------------------------------------------

    def transition(self, node: Node, new: TaskState, *, persisted: bool = False) -> None:
        """Move a task to a new state and mirror it into the run store.

        Raises:
            IllegalTransition: the table in :mod:`.states` does not allow it (a bug).
        """
        check(node.qname, node.state, new)
        node.state = new
        self.recorder.mirror(node, persisted=persisted)

    def finish(
        self,
        node: Node,
        state: TaskState,
        reason: str | None = None,
        *,
        persisted: bool = False,
        own: bool = False,
    ) -> None:
        """A task reached a final state: record it and let its dependents go (by message).

        ``own``: a DAG or loop task failed for a reason of its own (its inputs, its
        condition, its items), not because a task inside it did: the run lists it
        among its failures, as it lists every executor that failed.
        """
        if node.state.terminal:
            return
        node.finished = time.time()
        if reason and self.secret_values:
            reason = kube_objects.redact(reason, self.secret_values)
            if node.error:
                node.error = kube_objects.redact(node.error, self.secret_values)
        if state is S.FAILED and reason and node.error is None:
            node.error = reason
        node.reason = reason
        if state is S.FAILED and node.kind == "container" and node.error:
            node.error += launch.remote_hint(node)
        if state is S.FAILED and (node.is_executor or own):
            self.failures.append(
                {"task": node.qname, "error": node.error, "log_path": node.log_path}
            )
        if state is S.FAILED:
            self.stopping = True
        if state in (S.SKIPPED, S.NOT_RUN) and node.kind == "dag":
            scopes.record_descendants(self, node, state.stored, reason)
        self.transition(node, state, persisted=persisted)
        if node.is_executor:
            self.obs.task_end(self.task_info(node))
        scope = node.scope
        scope.remaining -= 1
        for name in node.downstream:
            down = scope.children[name]
            down.waiting -= 1
            if down.waiting == 0:
                self.post(m.Consider(down))
        if scope.remaining == 0:
            self.post(m.ScopeEnded(scope))

    # -- deciding whether a task starts ----------------------------------------------------------

    def _consider(self, node: Node) -> None:
        """All upstream tasks have ended: decide, resolve inputs, and start the node."""
        if self.cancelled or node.state is not S.PENDING:
            return
        status, reason = graph.dependencies_decision(node)
        if status is None and self.stopping and not node.exempt:
            status, reason = graph.NOT_RUN, "not started: the run is stopping after a failure"
        if status is not None:
            self.finish(node, S.SKIPPED if status == graph.SKIPPED else S.NOT_RUN, reason)
            return
        try:
            params, arts, absent = graph.resolve_inputs(node, self.job_resource_name)
            params = launch.resolve_constants(self, node, params, arts)
        except (graph.InputError, ValueError) as e:
            self.finish(node, S.FAILED, f"cannot resolve inputs: {e}", own=True)
            return
        node.params, node.artifacts = params, arts
        condition = (node.task.get("triggerPolicy") or {}).get("condition")
        if condition:
            try:
                ok = conditions.evaluate(condition, params)
            except conditions.ConditionError as e:
                self.finish(node, S.FAILED, f"condition: {e}", own=True)
                return
            if not ok:
                self.finish(node, S.SKIPPED, f"condition is false: {condition}")
                return
        node.started = time.time()
        if node.kind in ("dag", "loop"):
            scopes.start_group(self, node)
        elif node.kind == "importer":
            importers.start_importer(self, node)
        elif node.kind == "stub":
            importers.run_stub(self, node)
        else:
            launch.prepare(self, node, absent)

    # -- notices, observers, status lines ---------------------------------------------------------

    def notice(self, message: str) -> None:
        if self.secret_values:
            message = kube_objects.redact(message, self.secret_values)
        if message in self._seen_notices:
            return
        self._seen_notices.add(message)
        self.notices.append(message)
        self.obs.notice(message)

    def notice_task(self, node: Node, message: str) -> None:
        if self.secret_values:
            message = kube_objects.redact(message, self.secret_values)
        self.obs.notice(f"{node.qname}: {message}")

    def task_info(self, node: Node) -> TaskInfo:
        label = node.component.get("executorLabel")
        facts = self._executor_facts.get(label)
        if facts is None:
            facts = self._executor_facts[label] = _executor_facts(self.spec, label)
        command, source, image = facts
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
            command=list(command),
            source=source,
            image=image,
            error=node.error if node.status in (graph.FAILED, graph.CANCELLED) else None,
            log_path=node.log_path,
            duration_s=node.duration_s,
            cost=node.duration_s * node.cost_per_hour / 3600.0,
        )

    def mask_secrets(self, text: str) -> str:
        """``text`` with the value of every secret this run read so far masked (``***``)."""
        return kube_objects.redact(text, self.secret_values) if self.secret_values else text

    def _on_status_line(self, qname: str, line: str) -> None:
        line = self.mask_secrets(line)
        self.obs.task_status(qname, line)
        # The runtime's register step says "waiting for approval: <command>" while it blocks.
        self._on_approval(qname, line.startswith("waiting for approval"))

    def _on_approval(self, qname: str, waiting: bool) -> None:
        node = self.running.get(qname)
        if node is None:
            return
        if waiting and node.state is S.RUNNING:
            self.transition(node, S.WAITING_FOR_APPROVAL)
        elif not waiting and node.state is S.WAITING_FOR_APPROVAL:
            self.transition(node, S.RUNNING)


def _executor_facts(
    spec: PipelineSpec, label: str | None
) -> tuple[list[str], str | None, str | None]:
    """An executor's command line, embedded Python source and image (the same for every task)."""
    executor = spec.executors.get(label or "") or {}
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
    image = container.get("image")
    return command, source, None if image is None else str(image)


__all__ = ["Orchestrator", "RunOptions", "RunSummary", "TaskRunner"]
