"""The local approval channel, client side: find the engines that wait on approvals and talk to them.

Every local run's engine listens on one Unix socket (``engine/approval_channel.py``)
in Linux's *abstract* namespace, named after the local root and the run id. The
abstract namespace is chosen over a file in a 0700 directory because a task runs
as the same OS user as the engine: a file it could unlink and replace with its
own listener, an abstract name it cannot take from a live engine, and the name
disappears with the engine (so "the engine is gone" is exact, with no stale
file). Access is checked per connection by the engine (``SO_PEERCRED``: same
user, and for a decision, not a process of the run).

Protocol: one JSON object per line, one request per connection.

* ``{"op": "list"}`` -> ``{"ok": true, "claims": [CLAIM, ...]}``;
* ``{"op": "decide", "model", "version", "approve", "comment", "by"}`` ->
  ``{"ok": true, "claim": CLAIM}`` or ``{"ok": false, "error": "one line"}``;
* ``{"op": "wait", "model", "version", "promote_to", "timeout_s", "tracking_uri",
  "step"}`` (a task of the run only) -> ``{"ok": true, "claim": CLAIM}`` at once, then a
  second line with the final CLAIM when it is decided or expires.

A CLAIM is what the engine holds: ``model, version, state, run_id, pipeline, step,
promote_to, registry, requested_at, deadline, by, claimed_by, at, comment``.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

PREFIX = "workbench-approvals"
_LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags column
#: The longest line either side reads: a peer that never ends its line is cut off here.
MAX_LINE_BYTES = 1 << 20


class ChannelError(Exception):
    """The engine refused a request (its one line says why), or could not be reached."""


def root_digest(root: Path) -> str:
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]


def channel_name(root: Path, run_id: str) -> str:
    """The abstract socket name of run ``run_id``'s engine under local root ``root``."""
    return f"{PREFIX}/{root_digest(root)}/{run_id}"


def live_runs(root: Path) -> list[str]:
    """Run ids under ``root`` whose engine listens now (read from ``/proc/net/unix``)."""
    prefix = "@" + channel_name(root, "")
    found = []
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 8 or not fields[7].startswith(prefix):
                    continue
                if int(fields[3], 16) & _LISTENING:
                    found.append(fields[7][len(prefix) :])
    except OSError:
        return []
    return sorted(set(found))


def connect(root: Path, run_id: str, timeout: float | None = 30.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect("\0" + channel_name(root, run_id))
    except OSError as e:
        sock.close()
        raise ChannelError(f"run {run_id}'s engine is not running ({e.strerror or e})") from None
    return sock


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def read_line(sock: socket.socket, buf: bytearray) -> dict[str, Any] | None:
    """The next JSON line from ``sock`` (None when it closed first).

    Raises:
        ValueError: the line is not JSON, or runs past :data:`MAX_LINE_BYTES`.
    """
    while b"\n" not in buf:
        if len(buf) > MAX_LINE_BYTES:
            raise ValueError(f"a request line longer than {MAX_LINE_BYTES} bytes")
        data = sock.recv(65536)
        if not data:
            return None
        buf.extend(data)
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    out: dict[str, Any] = json.loads(line)
    return out


def ask(root: Path, run_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """Send one request to run ``run_id``'s engine and return its answer.

    Raises:
        ChannelError: the engine is gone, or it refused (with its reason).
    """
    with connect(root, run_id) as sock:
        send(sock, message)
        answer = read_line(sock, bytearray())
    if answer is None:
        raise ChannelError(f"run {run_id}'s engine closed the connection without an answer")
    if not answer.get("ok"):
        raise ChannelError(str(answer.get("error") or "refused"))
    return answer


def claims(root: Path) -> list[dict[str, Any]]:
    """What every live engine under ``root`` waits on (or decided while it runs)."""
    out: list[dict[str, Any]] = []
    for run_id in live_runs(root):
        try:
            out.extend(ask(root, run_id, {"op": "list"}).get("claims") or [])
        except ChannelError:
            continue  # it ended between the listing and the question
    return out


def wait(
    root: Path,
    run_id: str,
    request: dict[str, Any],
    on_pending: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Ask this run's engine to hold a decision on a version, and block until it is made.

    Returns the final claim (approved, rejected or expired).

    Raises:
        ChannelError: no engine for this run, or it refused the request.
    """
    with connect(root, run_id, timeout=None) as sock:
        send(sock, {"op": "wait", **request})
        buf = bytearray()
        first = read_line(sock, buf)
        if first is None or not first.get("ok"):
            raise ChannelError(str((first or {}).get("error") or "the engine closed the channel"))
        if on_pending is not None:
            on_pending(first["claim"])
        if first["claim"]["state"] != "pending":
            return dict(first["claim"])
        final = read_line(sock, buf)
    if final is None:
        raise ChannelError(f"run {run_id}'s engine ended before a decision")
    return dict(final["claim"])


def decide(
    registry: Any,
    model: str,
    version: str,
    approve: bool,
    by: str | None,
    comment: str | None,
    root: Path,
    run: str | None,
) -> dict[str, Any]:
    """Deliver a decision to the live engine that waits on the version; returns its claim.

    Raises:
        ApprovalError: no live run (or several) waits on it, or the engine refused.
    """
    from workbench_dsl.backends.approvals import (
        BECAUSE_RUN_ENDED,
        PENDING,
        ApprovalError,
        check_pending,
        get,
        record_expired,
    )

    mine = [
        c
        for c in claims(root)
        if (c["model"], str(c["version"]), c["registry"]) == (model, version, registry.uri)
    ]
    if run:
        mine = [c for c in mine if c["run_id"] == run]
    runs = sorted({c["run_id"] for c in mine})
    if len(runs) > 1:
        raise ApprovalError(
            f"{model} version {version} is waited on by runs {', '.join(runs)}; "
            f"pass --run RUN to say whose"
        )
    if not runs:
        current = get(registry, model, version)  # UsageError when there is no such version
        if current.state == PENDING:
            reason = f"run {current.run_id or '?'} is not running"
            record_expired(registry, model, version, reason, BECAUSE_RUN_ENDED)
            raise ApprovalError(
                f"no live run waits on {model} version {version}: {reason} (cancelled, "
                f"failed or killed), so its approval is now expired; `workbench runs resume "
                f"{current.run_id or 'RUN'}` asks again"
            )
        check_pending(current)
        raise ApprovalError(f"no live run waits on {model} version {version}")
    message = {
        "op": "decide",
        "model": model,
        "version": version,
        "approve": approve,
        "comment": comment,
        "by": by,
    }
    try:
        answer = ask(root, runs[0], message)
    except ChannelError as e:
        raise ApprovalError(str(e)) from None
    return dict(answer["claim"])
