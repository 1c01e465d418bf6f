"""A task's compute resources as the local runner enforces them: the memory limit of its profile.

A compiled step carries its profile as ``container.resources`` of its executor
(``resourceMemoryLimit: 2Gi``, and KFP's older ``memoryLimit`` in GB). On a
cluster the kubelet enforces it through the pod's cgroup; here the runner puts
it on the attempt's cgroup (``memory.max``) where the host lets it, else on the
task's processes as ``RLIMIT_AS``, and says once per run which (or that it
cannot). CPU and accelerator counts are not enforced locally.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from workbench_dsl.engine import cgroups

_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_NO_LIMIT = 1 << 62  # bytes: past every address space (setrlimit takes < 2**63)
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def quantity_bytes(text: str) -> int | None:
    """Bytes in a Kubernetes quantity (``512Mi``, ``2G``, ``1e9``), or None when it is not one."""
    m = _QUANTITY.match(str(text))
    if m is None or m.group(2) not in _UNITS:
        return None
    return _bytes(float(m.group(1)) * _UNITS[m.group(2)])


def _bytes(value: float) -> int | None:
    """Whole bytes, or None for a number no memory has (``1e400`` is infinite as a float)."""
    return int(value) if math.isfinite(value) else None


def memory_limit(executor: dict[str, Any]) -> int | None:
    """The memory limit in bytes a compiled executor asks for, or None."""
    res = (executor.get("container") or {}).get("resources") or {}
    if not isinstance(res, dict):
        return None
    if res.get("resourceMemoryLimit"):
        return quantity_bytes(str(res["resourceMemoryLimit"]))
    if res.get("memoryLimit"):  # KFP < 2.2: a float, in GB
        try:
            return _bytes(float(res["memoryLimit"]) * 10**9)
        except (TypeError, ValueError):
            return None
    return None


def show_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def rlimit_notice() -> str:
    return (
        "memory limits of compute profiles are enforced locally per process, on its address "
        "space (RLIMIT_AS), because no cgroup v2 memory controller is delegated to the engine "
        "here; address space counts memory a program reserves but never uses, so a task may "
        "fail below its profile's limit"
    )


def unenforced_notice() -> str:
    return (
        "memory limits of compute profiles are not enforced on this host (no cgroup v2 memory "
        "controller and no RLIMIT_AS); tasks may use more memory than their profile says"
    )


def confine(cgroup: str | None, limit: int | None, how: str | None, forked: bool) -> None:
    """In an attempt's child: enter its cgroup and apply its memory limit.

    ``how`` is ``"cgroup"`` (``memory.max`` of the attempt's cgroup) or
    ``"rlimit"`` (``RLIMIT_AS``). A ``forked`` child already holds the warm
    interpreter's address space: its limit counts what the task adds to it;
    an exec'd program starts afresh.
    """
    if cgroup:
        try:
            cgroups.enter(Path(cgroup), limit if how == "cgroup" else None)
        except OSError as exc:
            print(f"[workbench] could not enter the attempt's cgroup: {exc}", file=sys.stderr)
            how = "rlimit"
    if limit and how == "rlimit":
        import resource

        base = _address_space() if forked else 0
        want = base + int(limit)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if want >= _NO_LIMIT:  # more than any address space: no limit (and no OverflowError)
            want = resource.RLIM_INFINITY
        if hard != resource.RLIM_INFINITY and (want > hard or want == resource.RLIM_INFINITY):
            # A limit this process inherited (a run started inside another run's task)
            # cannot be raised without privileges, and should not be: it stays in force.
            want = hard
        resource.setrlimit(resource.RLIMIT_AS, (want, want))


def _address_space() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def explain(error: str | None, limit: int | None, oom: bool) -> str | None:
    """A failed attempt's error, saying so when its profile's memory limit ended it."""
    if limit is None or error is None:
        return error
    shown = show_bytes(limit)
    if oom:
        return f"out of memory: over its profile's memory limit of {shown} (cgroup memory.max)"
    if error.startswith("MemoryError") or "Cannot allocate memory" in error:
        return f"{error}: over its profile's memory limit of {shown} (RLIMIT_AS)"
    return error
