"""The engine's side of manual approvals: decisions held in the engine's memory, from outside the run.

A task runs as the same OS user as the engine, so anything on disk (the MLflow
database, the run store, its environment) is the task's to write. What a task
cannot forge is the engine's memory and the kernel's word on which process is on
the other end of a Unix socket. So, for each run, the engine listens on one
socket (see ``backends/approvals/channel.py`` for the name and the protocol) and:

* a ``@register`` step of the run asks it to hold a decision on a version
  (``wait``): the engine records the version as pending in the registry and
  answers the step when the decision is made; only the engine itself or a
  process of the run (a descendant of the engine) may ask;
* a person's ``workbench approve|reject`` (or the dashboard, or ``recipe run
  --approve``) delivers the decision (``decide``); it is refused when the peer's
  uid is not the engine's, or when the peer process descends from the engine.
  The task runner's worker is a child subreaper, so a task's process that
  re-parents itself (double fork, ``setsid``) still descends from the engine;
* decisions are serialized under one lock: the first wins, a later one is
  refused with what happened; the registry's tags and the ``promote_to`` alias
  are written by the engine, as the record of a decision it holds;
* when the run ends (succeeded, failed, cancelled, interrupted) whatever is
  still pending is marked expired; if the engine is killed, its socket vanishes
  with it and ``workbench approve`` marks the version expired.

The engine's own process may decide (``recipe run --approve`` runs there): code
that runs inside the engine is already trusted with everything the engine does.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.backends import approvals
from workbench_dsl.backends.approvals.channel import channel_name, read_line, send
from workbench_dsl.paths import LocalRoot

_SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)  # Linux >= 6.5


@dataclass
class _Claim:
    model: str
    version: str
    promote_to: str | None
    registry: str
    step: str
    requested_at: str
    deadline: float
    state: str = approvals.PENDING
    by: str | None = None
    claimed_by: str | None = None
    at: str | None = None
    comment: str | None = None
    changed: threading.Event = field(default_factory=threading.Event)

    def to_json(self, run_id: str, pipeline: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "run_id": run_id,
            "pipeline": pipeline,
            "step": self.step,
            "promote_to": self.promote_to,
            "registry": self.registry,
            "requested_at": self.requested_at,
            "deadline": self.deadline,
            "by": self.by,
            "claimed_by": self.claimed_by,
            "at": self.at,
            "comment": self.comment,
        }


class Refused(Exception):
    """A request the engine will not carry out (its message goes back as one line)."""


class ApprovalChannel:
    """One run's approval channel: open it before the first task, close it with the run's status."""

    def __init__(self, root: LocalRoot, run_id: str, pipeline: str) -> None:
        self.root, self.run_id, self.pipeline = root, run_id, pipeline
        self._lock = threading.Lock()
        self._claims: dict[tuple[str, str, str], _Claim] = {}
        self._registries: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- life ----------------------------------------------------------------------

    def open(self) -> ApprovalChannel:
        """Listen (a few microseconds: runs without approvals pay nothing more)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind("\0" + channel_name(self.root.root, self.run_id))
        except OSError:
            sock.close()  # no abstract namespace (not Linux): decisions are refused
            return self
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="wb-approvals", daemon=True)
        self._thread.start()
        return self

    def close(self, status: str) -> None:
        """Stop listening; mark what is still pending expired (the run ended with ``status``)."""
        with self._lock:
            self._closed = True
            for claim in self._claims.values():
                if claim.state == approvals.PENDING:
                    reason = f"run {self.run_id} ended ({status.lower()}) before a decision"
                    self._expire(claim, reason, approvals.BECAUSE_RUN_ENDED)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what the requests do (callable in-process too) ----------------------------

    def request(
        self,
        model: str,
        version: str,
        *,
        promote_to: str | None,
        timeout_s: float,
        tracking_uri: str | None,
        step: str,
    ) -> dict[str, Any]:
        """Hold a decision on ``model`` ``version`` for ``timeout_s`` (the same one again: reused)."""
        registry = self._registry(tracking_uri)
        key = (registry.uri, model, str(version))
        with self._lock:
            if self._closed:
                raise Refused(f"run {self.run_id} has ended")
            claim = self._claims.get(key)
            if claim is None or claim.state == approvals.EXPIRED:
                approvals.record_request(
                    registry,
                    model,
                    str(version),
                    timeout_s=timeout_s,
                    promote_to=promote_to,
                    run_id=self.run_id,
                )
                claim = _Claim(
                    model=model,
                    version=str(version),
                    promote_to=promote_to or None,
                    registry=registry.uri,
                    step=step,
                    requested_at=approvals.iso(),
                    deadline=time.time() + timeout_s,
                )
                self._claims[key] = claim
            return self._view(claim)

    def decide(
        self,
        model: str,
        version: str,
        *,
        approve: bool,
        approver_uid: int,
        comment: str | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Decide, once: the first decision wins; a later one is refused saying what happened."""
        verb = "approve" if approve else "reject"
        with self._lock:
            found = [c for (_, m, v), c in self._claims.items() if (m, v) == (model, str(version))]
            if not found:
                raise Refused(f"run {self.run_id} does not wait on {model} version {version}")
            claim = found[-1]
            self._expire_if_overdue(claim)
            if claim.state != approvals.PENDING:
                raise Refused(_already(claim))
            if not approve and not (comment and comment.strip()):
                raise Refused(f"a rejection needs a reason: pass --comment 'why' to `{verb}`")
            approver = _user(approver_uid)
            claimed = (by or "").strip() or None
            approvals.record_decision(
                self._registry_at(claim.registry),
                model,
                claim.version,
                approve=approve,
                by=approver,
                claimed_by=claimed if claimed != approver else None,
                comment=(comment or "").strip(),
                promote_to=claim.promote_to,
            )
            claim.state = approvals.APPROVED if approve else approvals.REJECTED
            claim.by, claim.at, claim.comment = approver, approvals.iso(), (comment or "").strip()
            claim.claimed_by = claimed if claimed != approver else None
            claim.changed.set()
            return self._view(claim)

    def claims(self) -> list[dict[str, Any]]:
        with self._lock:
            for claim in self._claims.values():
                self._expire_if_overdue(claim)
            return [self._view(c) for c in self._claims.values()]

    # -- the socket ----------------------------------------------------------------

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._handle, args=(conn,), name="wb-approval", daemon=True
            ).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            peer = _Peer.of(conn)
        except OSError:
            conn.close()
            return
        with conn:
            try:
                peer.check_user()  # another user learns nothing, not even what waits
                conn.settimeout(30)
                message = read_line(conn, bytearray())
                if message is None:
                    return
                op = message.get("op")
                if op == "wait":
                    self._serve_wait(conn, peer, message)
                    return
                if op == "list":
                    answer: dict[str, Any] = {"ok": True, "claims": self.claims()}
                elif op == "decide":
                    answer = {"ok": True, "claim": self._serve_decide(peer, message)}
                else:
                    raise Refused(f"unknown request {op!r}")
            except Refused as e:
                answer = {"ok": False, "error": str(e)}
            except (OSError, ValueError, KeyError, TypeError) as e:
                answer = {"ok": False, "error": f"bad request: {type(e).__name__}: {e}"}
            except Exception as e:  # a registry error: say it, keep serving
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            finally:
                peer.close()
            with contextlib.suppress(OSError):
                send(conn, answer)

    def _serve_decide(self, peer: _Peer, message: dict[str, Any]) -> dict[str, Any]:
        model, version = str(message["model"]), str(message["version"])
        approve = bool(message["approve"])
        verb = "approve" if approve else "reject"
        peer.check_user()
        if peer.pid != os.getpid() and peer.descends_from(os.getpid()):
            raise Refused(
                f"a pipeline cannot {verb} its own step: the decision came from process "
                f"{peer.pid}, a process of run {self.run_id}; a person must run "
                f"`workbench {verb} {model} {version}` outside the run"
            )
        peer.check_alive()
        return self.decide(
            model,
            version,
            approve=approve,
            approver_uid=peer.uid,
            comment=message.get("comment"),
            by=message.get("by"),
        )

    def _serve_wait(self, conn: socket.socket, peer: _Peer, message: dict[str, Any]) -> None:
        peer.check_user()
        if peer.pid != os.getpid() and not peer.descends_from(os.getpid()):
            raise Refused(f"only a task of run {self.run_id} may ask it to wait for a decision")
        timeout_s = float(message["timeout_s"])
        if not (math.isfinite(timeout_s) and timeout_s > 0):  # NaN would never expire
            raise Refused(
                f"timeout_s must be a positive, finite number of seconds, got {timeout_s}"
            )
        claim_view = self.request(
            str(message["model"]),
            str(message["version"]),
            promote_to=message.get("promote_to") or None,
            timeout_s=timeout_s,
            tracking_uri=message.get("tracking_uri") or None,
            step=str(message.get("step") or ""),
        )
        conn.settimeout(None)
        send(conn, {"ok": True, "claim": claim_view})
        key = (claim_view["registry"], claim_view["model"], claim_view["version"])
        claim = self._claims[key]
        while True:
            with self._lock:
                self._expire_if_overdue(claim)
                if claim.state != approvals.PENDING:
                    final = self._view(claim)
                    break
                claim.changed.clear()
                remaining = claim.deadline - time.time()
            claim.changed.wait(max(0.01, min(remaining, 60.0)))
        send(conn, {"ok": True, "claim": final})

    # -- helpers (called with the lock held) ---------------------------------------

    def _view(self, claim: _Claim) -> dict[str, Any]:
        return claim.to_json(self.run_id, self.pipeline)

    def _expire_if_overdue(self, claim: _Claim) -> None:
        if claim.state == approvals.PENDING and time.time() > claim.deadline:
            self._expire(claim, "no decision before the deadline", approvals.BECAUSE_TIMEOUT)

    def _expire(self, claim: _Claim, reason: str, because: str) -> None:
        with contextlib.suppress(Exception):  # the record is best effort; the claim is the truth
            approvals.record_expired(
                self._registry_at(claim.registry), claim.model, claim.version, reason, because
            )
        claim.state, claim.at, claim.comment = approvals.EXPIRED, approvals.iso(), reason
        claim.changed.set()

    def _registry(self, tracking_uri: str | None) -> Any:
        from workbench_dsl.backends.registry import open_registry

        registry = open_registry(tracking_uri, root=self.root)
        return self._registries.setdefault(registry.uri, registry)

    def _registry_at(self, uri: str) -> Any:
        return self._registries[uri]


def _already(claim: _Claim) -> str:
    what = f"{claim.model} version {claim.version} was already {claim.state}"
    if claim.state == approvals.EXPIRED:
        return f"{what} ({claim.comment}) at {claim.at}"
    claimed = f" (claimed: {claim.claimed_by})" if claim.claimed_by else ""
    return what + (f" by {claim.by}{claimed} at {claim.at}" if claim.by else "")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


@dataclass
class _Peer:
    """The process on the other end of a connection, as the kernel reports it."""

    pid: int
    uid: int
    pidfd: int | None

    @classmethod
    def of(cls, conn: socket.socket) -> _Peer:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        pidfd = None
        with contextlib.suppress(OSError):
            pidfd = struct.unpack("i", conn.getsockopt(socket.SOL_SOCKET, _SO_PEERPIDFD, 4))[0]
        return cls(pid, uid, pidfd)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def check_user(self) -> None:
        if self.uid != os.getuid():
            raise Refused(
                f"the decision came from uid {self.uid}; only {_user(os.getuid())} (the user "
                "running this engine) may decide on its run's approvals"
            )

    def descends_from(self, ancestor: int) -> bool:
        """Whether ``ancestor`` is on this process's parent chain (``/proc/PID/stat``)."""
        pid = self.pid
        for _ in range(65536):
            if pid <= 1:
                return False
            if pid == ancestor:
                return True
            try:
                with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                    stat = f.read()
            except OSError:
                raise Refused(
                    f"the process that sent this (pid {self.pid}) is gone; decide from a "
                    "process that waits for the answer"
                ) from None
            pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        return False

    def check_alive(self) -> None:
        """The pid still names the process that connected (it was not reused meanwhile)."""
        if self.pidfd is None:
            return
        try:
            signal.pidfd_send_signal(self.pidfd, 0)
        except ProcessLookupError:
            raise Refused(f"the process that sent this (pid {self.pid}) exited") from None
        except OSError:
            pass
