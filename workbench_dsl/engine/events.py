"""Run and task lifecycle events, and the observer interface that receives them.

The orchestrator calls every registered :class:`RunObserver` as things happen:
the live progress view is one; OpenLineage emission (a later issue) is
another, plugged in without touching the orchestrator. Observers are called on
the orchestrator's loop thread, so they must be quick (hand slow work to a thread of
their own) and must not raise: an exception is logged and the observer is
dropped for the rest of the run.

A task event carries what lineage needs: the component and executor, the
resolved input parameters, input and output artifacts (URI, sha256, metadata,
type), output parameters, and the executor's command and embedded source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """A run as observers see it."""

    run_id: str
    pipeline: str
    parameters: dict[str, Any]
    root: str
    resumed: bool = False
    status: str = "RUNNING"
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    origin: str | None = None


@dataclass
class TaskInfo:
    """One task (a component invocation) as observers see it.

    Attributes:
        run_id: The run.
        task: Qualified task name (``for-loop-2[1]/train``).
        name: The task's own name in its DAG (``train``).
        component: The component's name (``comp-train``).
        executor: The executor label (``exec-train``), or None for DAG tasks.
        kind: ``container``, ``importer``, ``dag``, ``loop`` or ``iteration``.
        status: ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``SKIPPED``, ``NOT_RUN``, ``CANCELLED``.
        cached: Outputs came from the cache (no attempt ran).
        reused: Outputs came from this run's earlier attempt (a resume).
        attempt: The attempt number (0 when nothing ran).
        inputs: ``{"parameters": {...}, "artifacts": {name: [artifact, ...]}}``.
        outputs: The same shape; artifacts have ``uri``, ``sha256``, ``size``,
            ``metadata``, ``type``.
        command: The container's command + args, unresolved, as in the spec.
        source: The embedded Python source of a lightweight component, if any.
        image: The container image named in the spec.
        error: One line, when it failed.
        log_path: The attempt's log.
        duration_s: Wall time of the task (all attempts).
        cost: Duration times the task's cost per hour.
    """

    run_id: str
    task: str
    name: str
    component: str
    executor: str | None
    kind: str
    status: str
    cached: bool = False
    reused: bool = False
    attempt: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    source: str | None = None
    image: str | None = None
    error: str | None = None
    log_path: str | None = None
    duration_s: float = 0.0
    cost: float = 0.0


@runtime_checkable
class RunObserver(Protocol):
    """Receives lifecycle events; implement the ones you need (see :class:`BaseObserver`)."""

    def on_run_start(self, run: RunInfo) -> None: ...

    def on_task_start(self, task: TaskInfo) -> None: ...

    def on_task_end(self, task: TaskInfo) -> None: ...

    def on_task_status(self, task: str, line: str) -> None: ...

    def on_notice(self, message: str) -> None: ...

    def on_run_end(self, run: RunInfo) -> None: ...


class BaseObserver:
    """A :class:`RunObserver` that ignores everything; subclass and override."""

    def on_run_start(self, run: RunInfo) -> None:
        pass

    def on_task_start(self, task: TaskInfo) -> None:
        pass

    def on_task_end(self, task: TaskInfo) -> None:
        pass

    def on_task_status(self, task: str, line: str) -> None:
        pass

    def on_notice(self, message: str) -> None:
        pass

    def on_run_end(self, run: RunInfo) -> None:
        pass


class Observers:
    """Fans each event out to every observer; a failing observer is dropped, not fatal."""

    def __init__(self, observers: list[Any] | None = None) -> None:
        self._obs: list[Any] = list(observers or [])

    def add(self, observer: Any) -> None:
        self._obs.append(observer)

    def _emit(self, method: str, *args: Any) -> None:
        for ob in list(self._obs):
            fn = getattr(ob, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:
                log.exception("observer %r failed in %s; dropping it", ob, method)
                self._obs.remove(ob)

    def run_start(self, run: RunInfo) -> None:
        self._emit("on_run_start", run)

    def task_start(self, task: TaskInfo) -> None:
        self._emit("on_task_start", task)

    def task_end(self, task: TaskInfo) -> None:
        self._emit("on_task_end", task)

    def task_status(self, task: str, line: str) -> None:
        self._emit("on_task_status", task, line)

    def notice(self, message: str) -> None:
        self._emit("on_notice", message)

    def run_end(self, run: RunInfo) -> None:
        self._emit("on_run_end", run)
