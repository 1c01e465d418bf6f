"""Manual approval of registered model versions, kept as MLflow model-version tags.

A ``@register(approval="manual")`` step asks for a decision on the version it
registered (:func:`request`), shows ``workbench approve NAME VERSION`` as its
status, and waits (:func:`wait`); a person decides with ``workbench approve`` or
``workbench reject`` (:func:`decide`). The state lives in the registry itself
(tags ``workbench.approval*`` on the version), so the same code serves the local
SQLite registry and an MLflow server on a cluster, and any MLflow UI shows it.

Rules:

* approval and rejection record who (``--by``, default the OS user), when and
  the comment; a rejection needs a comment;
* a decision is final, and a version whose wait expired cannot be decided;
* a rejected version never receives an alias (the registry refuses it);
* a pipeline cannot approve its own step: a decision made from inside a task of
  the run that asked for it (``WORKBENCH_RUN_ID`` equal to the version's
  ``workbench.run_id`` tag) is refused.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workbench_dsl import _env
from workbench_dsl.errors import UsageError

if TYPE_CHECKING:
    from workbench_dsl.backends.registry import Registry, VersionInfo

TAG_STATE = "workbench.approval"
TAG_REQUESTED_AT = "workbench.approval.requested_at"
TAG_DEADLINE = "workbench.approval.deadline"
TAG_PROMOTE_TO = "workbench.approval.promote_to"
TAG_BY = "workbench.approval.by"
TAG_AT = "workbench.approval.at"
TAG_COMMENT = "workbench.approval.comment"
TAG_RUN_ID = "workbench.run_id"
TAG_PIPELINE = "workbench.pipeline"
TAG_STEP = "workbench.step"

PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"


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
    at: str | None = None
    comment: str | None = None

    @property
    def command(self) -> str:
        """The command a person runs to approve it."""
        return f"workbench approve {self.model} {self.version}"

    @property
    def overdue(self) -> bool:
        return self.state == PENDING and self.deadline is not None and time.time() > self.deadline

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
            run_id=t.get(TAG_RUN_ID) or None,
            pipeline=t.get(TAG_PIPELINE) or None,
            step=t.get(TAG_STEP) or None,
            by=t.get(TAG_BY),
            at=t.get(TAG_AT),
            comment=t.get(TAG_COMMENT),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "state": "expired" if self.overdue else self.state,
            "requested_at": self.requested_at,
            "deadline": _iso(self.deadline) if self.deadline else None,
            "promote_to": self.promote_to,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "step": self.step,
            "by": self.by,
            "at": self.at,
            "comment": self.comment,
            "command": self.command if self.state == PENDING and not self.overdue else None,
        }


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat(
        timespec="seconds"
    )


def get(registry: Registry, model: str, version: str) -> Approval:
    """The approval state of ``model`` version ``version``."""
    return Approval.from_version(_version(registry, model, version))


def request(
    registry: Registry,
    model: str,
    version: str,
    *,
    timeout_s: float,
    promote_to: str | None = None,
) -> Approval:
    """Mark a version as waiting for a decision, until ``timeout_s`` from now."""
    registry.set_tags(
        model,
        version,
        {
            TAG_STATE: PENDING,
            TAG_REQUESTED_AT: _iso(),
            TAG_DEADLINE: f"{time.time() + timeout_s:.3f}",
            TAG_PROMOTE_TO: promote_to or "",
        },
    )
    return get(registry, model, version)


def decide(
    registry: Registry,
    model: str,
    version: str,
    *,
    approve: bool,
    by: str | None = None,
    comment: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Approval:
    """Approve or reject a pending version (on approval, its ``promote_to`` alias is set).

    Raises:
        ApprovalError: the version is not pending, its wait expired, a rejection has no
            comment, or the caller is a task of the run that asked for the approval.
    """
    environ = os.environ if environ is None else environ
    current = get(registry, model, version)
    verb = "approve" if approve else "reject"
    if current.state == "none":
        raise ApprovalError(f"{model} version {version} is not waiting for approval")
    if current.state != PENDING:
        raise ApprovalError(
            f"{model} version {version} was already {current.state}"
            + (f" by {current.by} at {current.at}" if current.by else "")
        )
    if current.overdue:
        raise ApprovalError(
            f"the approval of {model} version {version} expired at {_iso(current.deadline)}"
        )
    caller_run = environ.get(_env.RUN_ID)
    if caller_run and current.run_id and caller_run == current.run_id:
        raise ApprovalError(
            f"a pipeline cannot {verb} its own step: run {caller_run} asked for this "
            f"approval; a person must run `workbench {verb} {model} {version}`"
        )
    if not approve and not (comment and comment.strip()):
        raise ApprovalError("a rejection needs a reason: pass --comment 'why'")
    registry.set_tags(
        model,
        version,
        {
            TAG_STATE: APPROVED if approve else REJECTED,
            TAG_BY: by or _whoami(),
            TAG_AT: _iso(),
            TAG_COMMENT: (comment or "").strip(),
        },
    )
    if approve and current.promote_to:
        registry.set_alias(model, current.promote_to, version)
    elif not approve:
        # A rejected version keeps no alias (and the registry refuses new ones).
        for alias in _version(registry, model, version).aliases:
            registry.delete_alias(model, alias)
    return get(registry, model, version)


def expire(registry: Registry, model: str, version: str) -> Approval:
    """Close a wait that timed out (a later approve or reject is refused)."""
    if get(registry, model, version).state == PENDING:
        registry.set_tags(model, version, {TAG_STATE: EXPIRED, TAG_AT: _iso()})
    return get(registry, model, version)


def wait(
    registry: Registry,
    model: str,
    version: str,
    *,
    poll_s: float = 1.0,
    on_poll: Callable[[Approval], None] | None = None,
) -> Approval:
    """Wait for a decision on a pending version; past its deadline it expires.

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


def pending(registry: Registry) -> list[Approval]:
    """Every version waiting for a decision (overdue ones included, marked expired)."""
    return [Approval.from_version(v) for v in registry.find_versions(TAG_STATE, PENDING)]


def version_view(v: VersionInfo) -> dict[str, Any]:
    """One version as ``workbench models show`` and ``workbench ui`` show it: its registry
    record, its approval (None when it never needed one) and the run that produced it."""
    out = v.to_json()
    approval = Approval.from_version(v)
    out["approval"] = approval.to_json() if approval.state != "none" else None
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


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")
