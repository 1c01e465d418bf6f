"""A cgroup (v2) per run, where the host lets us make one: every process of the run, found and ended.

A process group or a session can be left (``setsid``, twice); a cgroup cannot
be left without writing to cgroupfs. So where the host offers a writable
cgroup v2 hierarchy (root in most containers, or a systemd scope with
``Delegate=yes``), the task runner makes one cgroup per run below its own::

    <engine's cgroup>/workbench-<pid>-<n>/      the run
        worker/                                 the warm worker and its spares
        a<attempt>/                             one attempt: memory.max, cgroup.kill

and ends an attempt's processes with ``cgroup.kill`` when its main process
ends, and every process of the run when the run ends. ``memory.max`` is set
per attempt where the memory controller can be enabled below us (the root of
the hierarchy, or a delegated subtree); elsewhere the runner falls back to
``RLIMIT_AS`` (see ``worker.py``). Where no cgroup can be made, the runner
falls back to killing process trees, following re-parenting to the worker (a
child subreaper). See https://docs.kernel.org/admin-guide/cgroup-v2.html
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from workbench_dsl import _procs

_SEQ = itertools.count(1)


def _unified_mount() -> Path | None:
    """Where the cgroup2 hierarchy is mounted (``/sys/fs/cgroup``, or ``.../unified`` on hybrid hosts)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            fields = left.split()
            if len(fields) > 4 and fields[3] == "/":
                return Path(fields[4])
    return None


def own_cgroup() -> Path | None:
    """The directory of this process's cgroup v2, or None (no cgroup2, or not visible)."""
    mount = _unified_mount()
    if mount is None:
        return None
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            rel = line[3:].strip()
            if rel.endswith(" (deleted)"):
                return None
            path = mount / rel.lstrip("/")
            return path if path.is_dir() else None
    return None


def holds(group: Path, pid: int) -> bool:
    """Whether process ``pid`` is in ``group`` or a cgroup below it."""
    mount = _unified_mount()
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        if line.startswith("0::") and mount is not None:
            where = mount / line[3:].strip().lstrip("/")
            return where == group or group in where.parents
    return False


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except OSError:
        return ""


def pids_in(group: Path) -> list[int]:
    """Every process in ``group`` and the cgroups below it."""
    found: list[int] = []
    for dirpath, _, _ in os.walk(group):
        found.extend(int(p) for p in _read(Path(dirpath) / "cgroup.procs").split())
    return found


def kill(group: Path) -> None:
    """SIGKILL every process in ``group`` and below, and wait until it is empty (10 s at most)."""
    if not group.is_dir():
        return
    try:
        _write(group / "cgroup.kill", "1")  # kernel 5.14+: atomic, forks cannot race it
    except OSError:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = pids_in(group)
        if not pids:
            return
        _procs.kill(pids, signal.SIGKILL)  # older kernels: until no process is left
        time.sleep(0.01)


def remove(group: Path) -> None:
    """Remove ``group`` and the cgroups below it (they must be empty)."""
    for dirpath, _, _ in sorted(os.walk(group), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


def enter(group: Path, memory_max: int | None = None) -> None:
    """Create ``group`` (with ``memory.max`` when given) and move the calling process into it."""
    group.mkdir(exist_ok=True)
    if memory_max is not None:
        _write(group / "memory.max", str(memory_max))
        with contextlib.suppress(OSError):
            _write(group / "memory.swap.max", "0")  # as a pod: over the limit is OOM, not swap
    _write(group / "cgroup.procs", "0")


def oom_killed(group: Path) -> bool:
    """Whether the kernel's OOM killer ended a process of ``group`` for its ``memory.max``."""
    for line in _read(group / "memory.events").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip() not in ("", "0"):
            return True
    return False


def _remove_stale(parent: Path) -> None:
    """Remove the empty cgroups of runs whose engine died before it could (SIGKILL, a crash)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "workbench" and parts[1].isdigit():
            group = parent / name
            if not _procs.alive(int(parts[1])) and not pids_in(group):
                remove(group)


@dataclass(frozen=True)
class RunCgroup:
    """The cgroup of one run: ``path``; ``memory`` when attempts can get ``memory.max``."""

    path: Path
    memory: bool

    @classmethod
    def create(cls) -> RunCgroup | None:
        """A fresh cgroup below ours, or None where the host does not let us make one."""
        parent = own_cgroup()
        if parent is None:
            return None
        _remove_stale(parent)
        path = parent / f"workbench-{os.getpid()}-{next(_SEQ)}"
        try:
            path.mkdir()
        except OSError:
            return None
        # Moving a process needs write access to the common ancestor's cgroup.procs.
        if not os.access(parent / "cgroup.procs", os.W_OK) or not os.access(
            path / "cgroup.procs", os.W_OK
        ):
            remove(path)
            return None
        if "memory" not in _read(path / "cgroup.controllers").split():
            with contextlib.suppress(OSError):  # allowed at the root, or in a delegated subtree
                _write(parent / "cgroup.subtree_control", "+memory")
        memory = "memory" in _read(path / "cgroup.controllers").split()
        if memory:
            try:
                _write(path / "cgroup.subtree_control", "+memory")
            except OSError:
                memory = False
        return cls(path=path, memory=memory)

    def attempt(self, attempt_id: int) -> Path:
        return self.path / f"a{attempt_id}"

    @property
    def worker(self) -> Path:
        return self.path / "worker"

    def close(self) -> None:
        """End every process of the run and remove its cgroups."""
        kill(self.path)
        remove(self.path)
