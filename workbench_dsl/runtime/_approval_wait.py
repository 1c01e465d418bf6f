"""A ``@register`` step's wait for a manual approval: on the run's engine locally, on tags on a cluster."""

from __future__ import annotations

import os
from typing import Any

from workbench_dsl import _env
from workbench_dsl.errors import JobFailed
from workbench_dsl.runtime.register import RegisterSettings, _step_name

#: Seconds between reads of the approval tags while a manual approval is pending (cluster).
APPROVAL_POLL_S = 1.0


def _announce(settings: RegisterSettings, version: str) -> None:
    line = f"waiting for approval: workbench approve {settings.model} {version}"
    _env.set_status(line)
    print(f"{line}  (or: workbench reject {settings.model} {version} --comment WHY)", flush=True)


def wait_on_engine(registry: Any, settings: RegisterSettings, version: str) -> Any:
    """Locally: the run's engine holds the decision, and writes it (and ``promote_to``) itself.

    Nothing here can approve: this process only learns what the engine decided. A task
    that fakes the answer fools its own outputs, never the registry's record.
    """
    from pathlib import Path

    from workbench_dsl.backends import approvals
    from workbench_dsl.backends.approvals import channel

    home, run_id = os.environ.get(_env.HOME), os.environ.get(_env.RUN_ID)
    if not home or not run_id:
        raise JobFailed(
            "a manual approval needs the local engine: run the pipeline with `workbench run`"
        )
    request = {
        "model": settings.model,
        "version": version,
        "promote_to": settings.promote_to,
        "timeout_s": settings.approval_timeout,
        "tracking_uri": registry.uri,
        "step": _step_name(settings),
    }
    try:
        claim = channel.wait(
            Path(home), run_id, request, on_pending=lambda _: _announce(settings, version)
        )
    except channel.ChannelError as e:
        raise JobFailed(f"approval of {settings.model} version {version}: {e}") from None
    return approvals.Approval.from_claim(claim)


def wait_on_registry(registry: Any, settings: RegisterSettings, version: str) -> Any:
    """On a cluster: the decision is a tag on the MLflow server (its permissions guard it)."""
    from workbench_dsl.backends import approvals

    approvals.request(
        registry,
        settings.model,
        version,
        timeout_s=settings.approval_timeout,
        promote_to=settings.promote_to,
    )
    _announce(settings, version)
    decided = approvals.wait(registry, settings.model, version, poll_s=APPROVAL_POLL_S)
    if decided.state == approvals.APPROVED and settings.promote_to:
        registry.set_alias(settings.model, settings.promote_to, version)
    return decided


def earlier_version(registry: Any, settings: RegisterSettings) -> Any:
    """The version this run's step registered before it stopped, still waiting (a resume)."""
    from workbench_dsl.backends import approvals

    run_id = os.environ.get(_env.RUN_ID)
    if not run_id or not _env.running_locally():
        return None
    step = _step_name(settings)
    candidates = [
        v
        for v in registry.find_versions(approvals.TAG_RUN_ID, run_id)
        if v.name == settings.model
        and v.tags.get(approvals.TAG_STEP) == step
        and (
            v.tags.get(approvals.TAG_STATE) == approvals.PENDING
            or v.tags.get(approvals.TAG_EXPIRED_BECAUSE) == approvals.BECAUSE_RUN_ENDED
        )
    ]
    return max(candidates, key=lambda v: int(v.version), default=None)
