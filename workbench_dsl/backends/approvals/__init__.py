"""Manual approval of registered model versions: decisions held by the engine, recorded as tags.

A ``@register(approval="manual")`` step shows ``workbench approve NAME VERSION``
as its status and waits; a person decides with ``workbench approve`` or
``workbench reject`` (:func:`decide`), or in ``workbench ui``.

Locally a decision is never read from the registry: the run's engine holds it
(``engine/approval_channel.py``), accepts it only from a process outside the
run, then writes the tags ``workbench.approval*`` on the version and the
``promote_to`` alias as the *record* (any MLflow UI shows them). The tags a task
may write are never a trigger. On a cluster there is no engine to hold it: the
step polls the tags of an MLflow server, whose own permissions must keep the
pipeline's identity from writing them (docs/register-serve.md, "Threat model").

Rules:

* the approver recorded is the OS user of the deciding process (``--by`` is
  recorded as a claim, shown as such); a rejection needs a comment;
* a decision is final: of two at once, one wins and the other is refused with
  what happened; a version whose wait expired cannot be decided;
* a run that ends (or is killed) while it waits leaves its version expired;
* a rejected version never receives an alias (the registry refuses it).
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_dsl.errors import UsageError

if TYPE_CHECKING:
    from workbench_dsl.backends.registry import Registry, VersionInfo

TAG_STATE = "workbench.approval"
TAG_REQUESTED_AT = "workbench.approval.requested_at"
TAG_DEADLINE = "workbench.approval.deadline"
TAG_PROMOTE_TO = "workbench.approval.promote_to"
TAG_BY = "workbench.approval.by"
TAG_CLAIMED_BY = "workbench.approval.claimed_by"
TAG_AT = "workbench.approval.at"
TAG_COMMENT = "workbench.approval.comment"
TAG_WAITING_RUN = "workbench.approval.run_id"
TAG_EXPIRED_BECAUSE = "workbench.approval.expired_because"
TAG_RUN_ID = "workbench.run_id"
TAG_PIPELINE = "workbench.pipeline"
TAG_STEP = "workbench.step"

PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"
#: Why a version expired: its run ended first (a resume may ask again), or time ran out.
BECAUSE_RUN_ENDED, BECAUSE_TIMEOUT = "run-ended", "timeout"
_REMOTE_SCHEMES = ("http:", "https:", "databricks")


class ApprovalError(UsageError):
    """A decision that may not be made (already decided, expired, self-approval, ...)."""


@dataclass(frozen=True)
class Approval:
    """The approval state of one model version."""

    model: str
    version: str
    state: str  # pending | approved | rejected | expired | none
    requested_at: str | None = None
    deadline: float | None = None
    promote_to: str | None = None
    run_id: str | None = None
    pipeline: str | None = None
    step: str | None = None
    by: str | None = None
    claimed_by: str | None = None
    at: str | None = None
    comment: str | None = None

    @property
    def command(self) -> str:
        """The command a person runs to approve it."""
        return f"workbench approve {self.model} {self.version}"

    @property
    def overdue(self) -> bool:
        return self.state == PENDING and self.deadline is not None and time.time() > self.deadline

    @property
    def who(self) -> str:
        """``alice``, or ``alice (claimed: bob)`` when ``--by`` named someone else."""
        if not self.by:
            return "unknown"
        return self.by + (f" (claimed: {self.claimed_by})" if self.claimed_by else "")

    @classmethod
    def from_version(cls, v: VersionInfo) -> Approval:
        t = v.tags
        deadline = t.get(TAG_DEADLINE)
        return cls(
            model=v.name,
            version=v.version,
            state=t.get(TAG_STATE, "none"),
            requested_at=t.get(TAG_REQUESTED_AT),
            deadline=float(deadline) if deadline else None,
            promote_to=t.get(TAG_PROMOTE_TO) or None,
            run_id=t.get(TAG_WAITING_RUN) or t.get(TAG_RUN_ID) or None,
            pipeline=t.get(TAG_PIPELINE) or None,
            step=t.get(TAG_STEP) or None,
            by=t.get(TAG_BY) or None,
            claimed_by=t.get(TAG_CLAIMED_BY) or None,
            at=t.get(TAG_AT) or None,
            comment=t.get(TAG_COMMENT) or None,
        )

    @classmethod
    def from_claim(cls, c: dict[str, Any]) -> Approval:
        """What a live engine holds (``engine/approval_channel.py``)."""
        return cls(
            model=c["model"],
            version=str(c["version"]),
            state=c["state"],
            requested_at=c.get("requested_at"),
            deadline=c.get("deadline"),
            promote_to=c.get("promote_to"),
            run_id=c.get("run_id"),
            pipeline=c.get("pipeline"),
            step=c.get("step"),
            by=c.get("by"),
            claimed_by=c.get("claimed_by"),
            at=c.get("at"),
            comment=c.get("comment"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "state": "expired" if self.overdue else self.state,
            "requested_at": self.requested_at,
            "deadline": iso(self.deadline) if self.deadline else None,
            "promote_to": self.promote_to,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "step": self.step,
            "by": self.by,
            "claimed_by": self.claimed_by,
            "at": self.at,
            "comment": self.comment,
            "command": self.command if self.state == PENDING and not self.overdue else None,
        }


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat(
        timespec="seconds"
    )


def is_local(registry: Registry) -> bool:
    """Whether decisions on this registry go through a local engine (not an MLflow server)."""
    return not str(registry.uri).lower().startswith(_REMOTE_SCHEMES)


def get(registry: Registry, model: str, version: str) -> Approval:
    """The recorded approval state of ``model`` version ``version``."""
    return Approval.from_version(_version(registry, model, version))


# -- the record (written by the engine locally; by the step and approver on a cluster) --


def record_request(
    registry: Registry,
    model: str,
    version: str,
    *,
    timeout_s: float,
    promote_to: str | None = None,
    run_id: str | None = None,
) -> None:
    """Record that a version waits for a decision until ``timeout_s`` from now."""
    registry.set_tags(
        model,
        version,
        {
            TAG_STATE: PENDING,
            TAG_REQUESTED_AT: iso(),
            TAG_DEADLINE: f"{time.time() + timeout_s:.3f}",
            TAG_PROMOTE_TO: promote_to or "",
            TAG_WAITING_RUN: run_id or "",
            TAG_BY: "",
            TAG_CLAIMED_BY: "",
            TAG_AT: "",
            TAG_COMMENT: "",
            TAG_EXPIRED_BECAUSE: "",
        },
    )


def record_decision(
    registry: Registry,
    model: str,
    version: str,
    *,
    approve: bool,
    by: str,
    comment: str,
    promote_to: str | None,
    claimed_by: str | None = None,
) -> None:
    """Record a decision; an approval moves ``promote_to``, a rejection drops every alias."""
    registry.set_tags(
        model,
        version,
        {
            TAG_STATE: APPROVED if approve else REJECTED,
            TAG_BY: by,
            TAG_CLAIMED_BY: claimed_by or "",
            TAG_AT: iso(),
            TAG_COMMENT: comment,
        },
    )
    if approve and promote_to:
        registry.set_alias(model, promote_to, version)
    elif not approve:
        # A rejected version keeps no alias (and the registry refuses new ones).
        for alias in _version(registry, model, version).aliases:
            registry.delete_alias(model, alias)


def record_expired(
    registry: Registry, model: str, version: str, reason: str, because: str = BECAUSE_TIMEOUT
) -> None:
    """Record that a wait ended without a decision (a later approve or reject is refused)."""
    registry.set_tags(
        model,
        version,
        {TAG_STATE: EXPIRED, TAG_AT: iso(), TAG_COMMENT: reason, TAG_EXPIRED_BECAUSE: because},
    )


def request(
    registry: Registry,
    model: str,
    version: str,
    *,
    timeout_s: float,
    promote_to: str | None = None,
) -> Approval:
    """Mark a version as waiting for a decision (the cluster's way: a tag the step polls)."""
    record_request(registry, model, version, timeout_s=timeout_s, promote_to=promote_to)
    return get(registry, model, version)


def expire(registry: Registry, model: str, version: str) -> Approval:
    """Close a wait that timed out (a later approve or reject is refused)."""
    if get(registry, model, version).state == PENDING:
        record_expired(registry, model, version, "no decision before the deadline")
    return get(registry, model, version)


# -- deciding ------------------------------------------------------------------------


def decide(
    registry: Registry,
    model: str,
    version: str,
    *,
    approve: bool,
    by: str | None = None,
    comment: str | None = None,
    root: Path | None = None,
    run: str | None = None,
) -> Approval:
    """Approve or reject a pending version (on approval, its ``promote_to`` alias is set).

    Locally the decision goes to the engine of the run that waits on the version,
    which refuses it from a process of that run; on an MLflow server it is written
    as tags (the server's permissions decide who may).

    Args:
        by: A name to record beside the OS user, as a claim.
        root: The local root (default: this process's).
        run: The run whose engine should take it, when several claim the version.

    Raises:
        ApprovalError: no live run waits on the version, it was already decided or
            expired, a rejection has no comment, or the caller is a process of the run.
    """
    if not approve and not (comment and comment.strip()):
        raise ApprovalError("a rejection needs a reason: pass --comment 'why'")
    if is_local(registry):
        from workbench_dsl.backends.approvals import channel

        claim = channel.decide(
            registry, model, str(version), approve, by, comment, root or local_root_path(), run
        )
        return Approval.from_claim(claim)
    current = get(registry, model, version)
    check_pending(current)
    record_decision(
        registry,
        model,
        version,
        approve=approve,
        by=_whoami(),
        claimed_by=(by or "").strip() or None,
        comment=(comment or "").strip(),
        promote_to=current.promote_to,
    )
    return get(registry, model, version)


def check_pending(current: Approval) -> None:
    if current.state == "none":
        raise ApprovalError(
            f"{current.model} version {current.version} is not waiting for approval"
        )
    if current.state != PENDING:
        raise ApprovalError(
            f"{current.model} version {current.version} was already {current.state}"
            + (f" by {current.who}" if current.by else "")
            + (f" at {current.at}" if current.at else "")
            + (f" ({current.comment})" if current.state == EXPIRED and current.comment else "")
        )
    if current.overdue:
        raise ApprovalError(
            f"the approval of {current.model} version {current.version} expired at "
            f"{iso(current.deadline)}"
        )


def wait(
    registry: Registry,
    model: str,
    version: str,
    *,
    poll_s: float = 1.0,
    on_poll: Callable[[Approval], None] | None = None,
) -> Approval:
    """Wait for a decision recorded on an MLflow server (the cluster); past its deadline it expires.

    Returns the decided (approved or rejected) or expired approval.
    """
    while True:
        current = get(registry, model, version)
        if current.state != PENDING:
            return current
        if current.overdue:
            return expire(registry, model, version)
        if on_poll is not None:
            on_poll(current)
        remaining = (current.deadline or time.time() + poll_s) - time.time()
        time.sleep(max(0.01, min(poll_s, remaining)))


def pending(registry: Registry, *, root: Path | None = None) -> list[Approval]:
    """Every version waiting for a decision.

    Locally that is what live engines hold (a pending tag with no engine behind it
    is shown expired: nobody waits on it); on a server, the pending tags.
    """
    recorded = [Approval.from_version(v) for v in registry.find_versions(TAG_STATE, PENDING)]
    if not is_local(registry):
        return recorded
    from workbench_dsl.backends.approvals import channel

    live = [
        Approval.from_claim(c)
        for c in channel.claims(root or local_root_path())
        if c["registry"] == registry.uri and c["state"] == PENDING
    ]
    held = {(a.model, a.version) for a in live}
    stale = [
        Approval(**{**a.__dict__, "state": EXPIRED, "comment": "no live run waits on it"})
        for a in recorded
        if (a.model, a.version) not in held
    ]
    return sorted(
        live + stale, key=lambda a: (a.model, int(a.version) if a.version.isdigit() else 0)
    )


def version_view(v: VersionInfo) -> dict[str, Any]:
    """One version as ``workbench models show`` and ``workbench ui`` show it: its registry
    record, its approval (None when it never needed one) and the run that produced it."""
    out = v.to_json()
    approval = Approval.from_version(v)
    out["approval"] = approval.to_json() if approval.state != "none" else None
    from workbench_dsl.backends.registry import champion_view

    out["champion"] = champion_view(v.tags)
    out["produced_by"] = {
        "run_id": v.tags.get(TAG_RUN_ID) or None,
        "pipeline": v.tags.get(TAG_PIPELINE) or None,
        "step": v.tags.get(TAG_STEP) or None,
    }
    return out


def _version(registry: Registry, model: str, version: str) -> VersionInfo:
    try:
        return registry.get_version(model, version)
    except Exception as e:
        if "RESOURCE_DOES_NOT_EXIST" in str(e) or "not found" in str(e).lower():
            raise UsageError(f"no model version {model} {version} in the registry") from None
        raise


def local_root_path() -> Path:
    from workbench_dsl.paths import local_root

    return local_root().root


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")
