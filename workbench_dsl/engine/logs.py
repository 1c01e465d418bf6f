"""An attempt's log: its cap, and the pump that copies a child's output into it.

A child of the warm worker writes stdout and stderr to a pipe; the worker
pumps it into the attempt's log file as it comes (never holding more than one
64 KiB read), up to ``WORKBENCH_LOG_MAX_BYTES`` per attempt, then one
``[workbench] log cut`` line; the rest is read and dropped, so the task never
blocks on a full pipe. The values of the secrets an attempt reads are masked
(``***``) as they pass, as CI systems mask theirs: a secret a task prints never
reaches its log (a value split across two reads is held back until the next).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from workbench_dsl import _env
from workbench_dsl.engine.resources import quantity_bytes

LOG_MAX_BYTES = 64 << 20  # per attempt, unless WORKBENCH_LOG_MAX_BYTES says otherwise
_READ = 1 << 16


def log_max_bytes() -> int:
    """Bytes of output kept per attempt's log (``WORKBENCH_LOG_MAX_BYTES``; 0: no cap)."""
    raw = os.environ.get(_env.LOG_MAX_BYTES, "").strip()
    if not raw:
        return LOG_MAX_BYTES
    found = quantity_bytes(raw)
    if found is None:
        raise ValueError(
            f"{_env.LOG_MAX_BYTES}={raw!r} is not a size in bytes (for example 67108864 or 64Mi)"
        )
    return found


def cut_line(cap: int) -> bytes:
    return (
        f"[workbench] log cut at {cap} bytes ({_env.LOG_MAX_BYTES}); the rest of this "
        f"attempt's output is dropped\n"
    ).encode()


@dataclass
class LogPump:
    """Copies one attempt's output (``out_r``, non-blocking) into its log (``log``), up to ``cap``."""

    out_r: int
    log: int
    cap: int  # 0: no cap
    written: int = 0
    cut: bool = False
    newline: bool = True  # the last byte written ended a line
    mask: tuple[bytes, ...] = ()  # secret values, written as ***
    held: bytes = b""  # a tail that may be the start of a secret

    def __post_init__(self) -> None:
        # Longest first: a secret that holds another one is masked whole.
        self.mask = tuple(sorted(self.mask, key=len, reverse=True))

    def pump(self, drain: bool) -> bool:
        """Copy what is there now (all of it with ``drain``); False once every writer is gone."""
        for _ in range(1 << 30 if drain else 16):
            try:
                data = os.read(self.out_r, _READ)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                if self.held:
                    self._write(self.held)
                    self.held = b""
                return False
            self._write(self._masked(data) if self.mask else data)
        return True

    def _masked(self, data: bytes) -> bytes:
        data = self.held + data
        self.held = b""
        for value in self.mask:
            data = data.replace(value, b"***")
        longest = max(len(v) for v in self.mask)
        for k in range(min(len(data), longest - 1), 0, -1):
            tail = data[-k:]
            if any(v.startswith(tail) for v in self.mask):
                self.held, data = tail, data[:-k]
                break
        return data

    def _write(self, data: bytes) -> None:
        if self.cut:
            return
        keep = data
        if self.cap and self.written + len(data) >= self.cap:
            keep = data[: self.cap - self.written]
            self.cut = True
            if not keep.endswith(b"\n") and (keep or not self.newline):
                keep += b"\n"
            keep += cut_line(self.cap)
        self.written += len(keep)
        if keep:
            self.newline = keep.endswith(b"\n")
            try:
                while keep:
                    keep = keep[os.write(self.log, keep) :]
            except OSError:  # a full disk must not stop the worker
                self.cut = True
