"""Processes by pid, the one place that reads ``/proc``: alive or gone, start time, a tree, killing it.

Every layer that watches or ends processes (the engine's task runner and its
warm worker, the run store's liveness check, the local scheduler, local
endpoints) uses these, so "is pid 123 still the process we started" has one
answer. Linux ``/proc`` semantics; where ``/proc`` is missing, liveness falls
back to ``kill(pid, 0)`` and a tree is just its root.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state is [0], ppid [1])."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    return stat[stat.rfind(b")") + 2 :].decode("ascii", "replace").split()


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (to tell it from a later process with the same pid)."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def alive(pid: int | None, start: str | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not); with ``start``, whether it is still that process."""
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc: kill(0) is all we know
    if start is not None and len(fields) > 19 and fields[19] != start:
        return False  # the pid was reused by another process
    return bool(fields) and fields[0] != "Z"


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields is not None and len(fields) > 1 else None


def children_map() -> dict[int, list[int]]:
    """Every process's children, from one pass over ``/proc``."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if entry.isdigit():
            ppid = parent(int(entry))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """Every process below ``pid`` (children first, then theirs), by ``/proc``."""
    children = children_map() if children is None else children
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to each pid; one that is gone already is no error."""
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, sig)


def kill_tree(pid: int) -> None:
    """SIGKILL a process group and every descendant that left it (setsid, daemons).

    Descendants are listed before anything is killed: once a parent dies its
    children are re-parented, and ``/proc`` no longer shows them below ``pid``.
    """
    victims = descendants(pid)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    kill([pid, *victims])


def cmdline(pid: int) -> list[bytes]:
    """The command line of ``pid`` (empty when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []
