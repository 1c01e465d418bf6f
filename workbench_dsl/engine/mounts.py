"""Volumes at the path a component expects, without root: a user + mount namespace per attempt.

A task that mounts a PVC at ``/data`` must find it at ``/data``, not at a
rewritten path. The attempt's process (the worker's forked child, before it
runs the function or execs the command) enters a new user namespace, with its
own uid and gid mapped to themselves, and a new mount namespace, private to it
(``unshare(CLONE_NEWUSER | CLONE_NEWNS)``, what ``unshare -rm`` does, without
root). There it bind-mounts each volume's folder at its mount path, or mounts
a fresh tmpfs (an emptyDir; a secret's or config map's files, written there
and made read-only). Nothing is mounted on the host: the mounts end with the
process. A mount path that does not exist is created first (an empty folder
left on the host), so its nearest existing parent must be writable by the
user; the preflight refuses a run otherwise, and where the kernel does not
allow user namespaces (:func:`available`).

Each mount is a dict: ``{"path": DST, "source": DIR}`` (bind) or
``{"path": DST, "files": {name: text}, "readonly": bool}`` (tmpfs).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from functools import cache
from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter(mounts: list[dict[str, Any]]) -> None:
    """In a single-threaded child: a private user + mount namespace with ``mounts`` in it."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    # Parents first, as the container runtime mounts them: a secret at /data/creds goes
    # inside a PVC at /data, on a mount point made in it (as runc makes it in the volume).
    for m in sorted(mounts, key=lambda m: os.path.normpath(str(m["path"])).count("/")):
        os.makedirs(str(m["path"]), exist_ok=True)
        dst = str(m["path"]).encode()
        if "source" in m:
            src = str(m["source"]).encode()
            _check(libc.mount(src, dst, None, _MS_BIND | _MS_REC, None), f"bind {m['path']}")
            continue
        _check(libc.mount(b"tmpfs", dst, b"tmpfs", 0, b"mode=0700"), f"tmpfs {m['path']}")
        for name, text in (m.get("files") or {}).items():
            fd = os.open(os.path.join(m["path"], name), os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8", "surrogateescape"))  # kube_objects.to_bytes
        if m.get("readonly"):
            libc.mount(b"tmpfs", dst, None, _MS_REMOUNT | _MS_RDONLY, None)


def make_mount_point(path: str) -> None:
    """Create ``path`` on the host (an empty folder), as the mount's target."""
    os.makedirs(path, exist_ok=True)


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a mount point here, or None."""
    if not os.path.isabs(path):
        return f"mount path {path!r} is not absolute"
    if os.path.isdir(path):
        return None
    if os.path.exists(path):
        return f"mount path {path} exists on this machine and is not a folder"
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.access(parent, os.W_OK | os.X_OK):
        return None
    return (
        f"mount path {path} does not exist on this machine and {parent} is not writable: "
        f"create it once (sudo mkdir -p {path} && sudo chown $USER {path})"
    )


_PROBE = "import os, sys\nfrom workbench_dsl.engine import mounts\nmounts.enter([])\n"


@cache
def available() -> str | None:
    """None when this machine lets a user make a user + mount namespace, else why not."""
    if not sys.platform.startswith("linux"):
        return "volumes need Linux user namespaces"
    try:
        r = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot check for user namespaces: {e}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return (
            f"this machine does not allow user namespaces ({last}); volumes are mounted in "
            f"one (sysctl kernel.unprivileged_userns_clone=1, or run on a cluster)"
        )
    return None
