"""Process hygiene for the local backends: no orphans, whole-group kills, free ports.

A child that the local trainer or sweeper starts must not outlive the task
that started it, however that task ends: a Python exception, SIGTERM from the
engine's cancel, or SIGKILL from its timeout. Three layers make that hold:
children die with their parent (Linux ``PR_SET_PDEATHSIG``), all ranks of a job
share one process group that is signalled as a whole, and SIGTERM is turned
into an exception so ``finally`` blocks run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None = None) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only).

    ``expected_parent`` closes the race where the parent died before the call:
    if our parent is no longer that process, exit now.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(137)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Terminated(BaseException):
    """SIGTERM arrived (the engine cancelled the task): unwind and clean up."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of ending the process.

    Python's default for SIGTERM exits without running ``finally`` blocks, which
    would leave children behind. Only the main thread may install handlers;
    elsewhere this does nothing (children still die with us via PDEATHSIG).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
