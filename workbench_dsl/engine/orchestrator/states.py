"""Task states: every state a task can be in, the legal transitions, and what the store shows.

The loop's :meth:`~workbench_dsl.engine.orchestrator.loop.Orchestrator.transition` is the
only code that changes a task's state, and it refuses a transition this table does not
allow (an internal error, never a silent overwrite). The run store keeps KFP's coarser
vocabulary (``PENDING``, ``RUNNING``, ``SUCCEEDED``...): :attr:`TaskState.stored` maps
each state onto it, so ``workbench runs``, the UI and older stores read the same.
"""

from __future__ import annotations

from enum import Enum


class TaskState(Enum):
    """One task's state in a run (DAG, loop and executor tasks alike)."""

    # Members are singletons compared by identity: hash them by identity too (C speed).
    # Enum's own __hash__ is Python code, run for every lookup in the tables below --
    # several per task, so a visible share of a cached 10,000-task rerun.
    __hash__ = object.__hash__

    PENDING = "pending"  # upstream tasks have not all ended
    VERIFYING = "verifying"  # a cached (or earlier) result is being checked
    READY = "ready"  # may start; waits for a free slot
    RUNNING = "running"  # an attempt (or a group's children) is running
    WAITING_FOR_APPROVAL = "waiting_for_approval"  # running, blocked on a person's decision
    STORING_OUTPUTS = "storing_outputs"  # the attempt ended well; outputs go to the CAS
    WAITING_TO_RETRY = "waiting_to_retry"  # an attempt failed; the next is due later
    SUCCEEDED = "succeeded"
    CACHED = "cached"  # succeeded without running: outputs from the cache
    FAILED = "failed"
    SKIPPED = "skipped"  # its condition was false, or an upstream task was skipped
    NOT_RUN = "not_run"  # an upstream task failed, or the run stopped before it
    CANCELLED = "cancelled"

    status: str  # == stored (set below, for every member)

    @property
    def stored(self) -> str:
        """The status the run store (and every reader of it) shows for this state."""
        return _STORED[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


S = TaskState

TERMINAL = frozenset({S.SUCCEEDED, S.CACHED, S.FAILED, S.SKIPPED, S.NOT_RUN, S.CANCELLED})

_STORED = {
    S.PENDING: "PENDING",
    S.VERIFYING: "PENDING",
    S.READY: "PENDING",
    S.RUNNING: "RUNNING",
    S.WAITING_FOR_APPROVAL: "RUNNING",
    S.STORING_OUTPUTS: "RUNNING",
    S.WAITING_TO_RETRY: "RUNNING",
    S.SUCCEEDED: "SUCCEEDED",
    S.CACHED: "SUCCEEDED",
    S.FAILED: "FAILED",
    S.SKIPPED: "SKIPPED",
    S.NOT_RUN: "NOT_RUN",
    S.CANCELLED: "CANCELLED",
}

for _state, _status in _STORED.items():
    # What ``stored`` returns, as a plain attribute too: Node.status reads it per task
    # several times in a run of thousands (a property and a dict lookup cost more).
    _state.status = _status
del _state, _status

#: Legal transitions. Any state that is not final may fail or be cancelled.
ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    S.PENDING: frozenset(
        {S.VERIFYING, S.READY, S.RUNNING, S.SUCCEEDED, S.SKIPPED, S.NOT_RUN, S.FAILED}
    ),
    S.VERIFYING: frozenset({S.CACHED, S.SUCCEEDED, S.READY, S.FAILED, S.CANCELLED}),
    S.READY: frozenset({S.RUNNING, S.PENDING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset(
        {
            S.WAITING_FOR_APPROVAL,
            S.STORING_OUTPUTS,
            S.WAITING_TO_RETRY,
            S.SUCCEEDED,
            S.FAILED,
            S.NOT_RUN,
            S.SKIPPED,
            S.CANCELLED,
        }
    ),
    S.WAITING_FOR_APPROVAL: frozenset(
        {S.RUNNING, S.STORING_OUTPUTS, S.WAITING_TO_RETRY, S.FAILED, S.CANCELLED}
    ),
    S.STORING_OUTPUTS: frozenset({S.SUCCEEDED, S.WAITING_TO_RETRY, S.FAILED, S.CANCELLED}),
    S.WAITING_TO_RETRY: frozenset({S.READY, S.FAILED, S.CANCELLED}),
}

#: States in which a task holds an attempt in the task runner.
ATTEMPTING = frozenset({S.RUNNING, S.WAITING_FOR_APPROVAL})

#: The store's statuses for the final states (what ``graph`` compares against).
BY_STORED = {
    "SUCCEEDED": S.SUCCEEDED,
    "FAILED": S.FAILED,
    "SKIPPED": S.SKIPPED,
    "NOT_RUN": S.NOT_RUN,
    "CANCELLED": S.CANCELLED,
}


class IllegalTransition(RuntimeError):
    """A transition the table does not allow: a bug in the orchestrator."""


def check(task: str, old: TaskState, new: TaskState) -> None:
    """Raise :class:`IllegalTransition` unless ``old -> new`` is allowed."""
    if new not in ALLOWED.get(old, frozenset()):
        raise IllegalTransition(f"{task}: {old.value} -> {new.value} is not a legal transition")
