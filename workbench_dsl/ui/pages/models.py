"""Models and approvals: registered versions with aliases, metrics and who approved what and
when; the versions waiting for a decision, with Approve and Reject buttons that call
exactly what ``workbench approve`` and ``workbench reject`` call
(:func:`workbench_dsl.backends.approvals.decide`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from workbench_dsl.errors import UsageError
from workbench_dsl.ui.actions import act
from workbench_dsl.ui.render import page

router = APIRouter()


def _decisions(registry: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The latest approvals, rejections and expiries, newest first."""
    from workbench_dsl.backends import approvals

    found = []
    for state in (approvals.APPROVED, approvals.REJECTED, approvals.EXPIRED):
        for v in registry.find_versions(approvals.TAG_STATE, state):
            found.append(approvals.Approval.from_version(v).to_json())
    found.sort(key=lambda a: str(a.get("at") or ""), reverse=True)
    return found[:limit]


@router.get("/models")
def models(request: Request) -> Response:
    """Registered models: latest version, aliases, and how many versions wait for a decision."""
    state = request.app.state.ui
    if not state.registry_exists():
        return page(request, "models.html", nav="models", title="Models", models=[], pending=[])
    from workbench_dsl.backends import approvals

    registry = state.registry()
    pending = [a.to_json() for a in approvals.pending(registry, root=state.root.root)]
    return page(
        request,
        "models.html",
        nav="models",
        title="Models",
        models=[m.to_json() for m in registry.models()],
        pending=pending,
    )


@router.get("/models/{name}")
def model(request: Request, name: str) -> Response:
    """One model's versions: aliases, metrics, approval (who, when, why), producing run."""
    from workbench_dsl.backends.approvals import version_view

    state = request.app.state.ui
    try:
        versions = state.registry().versions(name) if state.registry_exists() else []
    except ValueError:  # a name the registry cannot look up (a quote): no such model
        versions = []
    if not versions:
        raise UsageError(f"no registered model named {name!r}")
    rows = [version_view(v) for v in versions]
    metric_names = sorted({k for r in rows for k in r["metrics"]})
    return page(
        request,
        "model.html",
        nav="models",
        title=f"Model {name}",
        name=name,
        versions=rows,
        metric_names=metric_names,
    )


@router.get("/approvals")
def approvals_page(request: Request) -> Response:
    """Versions waiting for a decision (with the buttons), and the latest decisions."""
    state = request.app.state.ui
    if not state.registry_exists():
        return page(
            request, "approvals.html", nav="approvals", title="Approvals", pending=[], decided=[]
        )
    from workbench_dsl.backends import approvals

    registry = state.registry()
    return page(
        request,
        "approvals.html",
        nav="approvals",
        title="Approvals",
        pending=[a.to_json() for a in approvals.pending(registry, root=state.root.root)],
        decided=_decisions(registry),
    )


@router.post("/approvals/decide")
async def decide(request: Request) -> Response:
    """Approve or reject a waiting version (a rejection needs a comment)."""
    from workbench_dsl.backends.registry import AliasRefused

    state = request.app.state.ui

    def work(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
        from workbench_dsl.backends import approvals

        decision = form.get("decision", "")
        if decision not in ("approve", "reject"):
            raise UsageError("decision must be approve or reject")
        model, version = form.get("model", ""), form.get("version", "")
        if not model or not version:
            raise UsageError("name the model and the version")
        approve = decision == "approve"
        decided = approvals.decide(
            state.registry(),
            model,
            version,
            approve=approve,
            by=form.get("by", "").strip() or None,
            comment=form.get("comment") or None,
            root=state.root.root,
            run=form.get("run") or None,
        )
        line = f"{model} version {version} {'approved' if approve else 'rejected'} by {decided.who}"
        if approve and decided.promote_to:
            line += f"; alias {decided.promote_to} -> version {version}"
        return line, {"approval": decided.to_json()}

    return await act(request, work, back="/approvals", expected=(AliasRefused,))
