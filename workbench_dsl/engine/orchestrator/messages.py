"""The messages on the orchestrator's one queue: everything that happens to a run is one.

Other threads (the task runner's futures, the I/O pool, retry timers, the
status-file watcher, signal handlers) only ever post messages; the loop's
thread handles them one at a time. The loop posts messages to itself too --
"upstream ended, consider this task", "this scope's tasks all ended", "this
cache hit checked out" -- instead of calling the handler, so no work is done by
recursion and the stack depth never depends on the size of the DAG.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from workbench_dsl.engine.graph import Node, Scope
from workbench_dsl.engine.task_api import TaskOutcome


@dataclass(frozen=True, slots=True)
class Consider:
    """A task's upstream tasks have all ended (or it has none): decide and start it."""

    node: Node


@dataclass(frozen=True, slots=True)
class ScopeEnded:
    """Every task of a scope (a DAG execution or a loop iteration) has ended."""

    scope: Scope


@dataclass(frozen=True, slots=True)
class CacheChecked:
    """A cached or earlier result was checked; ``entry`` is None when an artifact is gone."""

    node: Node
    entry: dict[str, Any] | None
    source: str  # "cached" | "reused"


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    """The task runner finished an attempt (its future holds the outcome)."""

    node: Node
    attempt: int
    future: Future[TaskOutcome]


@dataclass(frozen=True, slots=True)
class OutputsStored:
    """An attempt's outputs are in the CAS (``result``), or storing them failed (an exception)."""

    node: Node
    attempt: int
    outcome: TaskOutcome
    result: Any


@dataclass(frozen=True, slots=True)
class Imported:
    """An importer's artifact is in the CAS (``(entry, note)``), or importing failed."""

    node: Node
    result: Any


@dataclass(frozen=True, slots=True)
class RetryDue:
    """A failed task's back-off delay has passed."""

    node: Node


@dataclass(frozen=True, slots=True)
class StatusLine:
    """A running task published a new status line (``workbench_dsl._env.set_status``)."""

    task: str
    line: str


@dataclass(frozen=True, slots=True)
class ApprovalWaiting:
    """A running task waits for a person's decision (``detail`` says on what); or stopped."""

    task: str
    waiting: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop the run: kill running attempts; what has not started stays pending."""

    reason: str


Message = (
    Consider
    | ScopeEnded
    | CacheChecked
    | AttemptEnded
    | OutputsStored
    | Imported
    | RetryDue
    | StatusLine
    | ApprovalWaiting
    | Cancel
)

#: Messages that answer work handed to the I/O pool (the loop counts those in flight).
FROM_IO = (CacheChecked, OutputsStored, Imported)
