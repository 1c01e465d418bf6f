"""Endpoints: revisions, the canary's share, request rate, latency and error rate from each
server's own ``/metrics``, and the stable revision's drift (``workbench endpoints drift``,
cached as ``/metrics`` caches it); Promote and Rollback call what ``workbench endpoints promote`` and
``rollback`` call (the local deployer's :meth:`promote` and :meth:`rollback`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from workbench_dsl.errors import JobFailed, UsageError
from workbench_dsl.ui.actions import act
from workbench_dsl.ui.charts import sparkline
from workbench_dsl.ui.render import page

router = APIRouter()


def _with_metrics(state: Any, info: Any) -> dict[str, Any]:
    row = state.deployer().store.get(info.name)
    data = info.to_json()
    data["metrics"] = (
        state.metrics.summary(info.name, row.port if row is not None else None)
        if info.state == "running"
        else None
    )
    spark = (data["metrics"] or {}).get("spark") or []
    data["spark"] = sparkline(spark, title="requests per second, last minutes") if spark else None
    return data


@router.get("/endpoints")
def endpoints(request: Request) -> Response:
    """Every local endpoint with its split and the last minute's traffic."""
    state = request.app.state.ui
    infos = [_with_metrics(state, i) for i in state.deployer().list()]
    return page(request, "endpoints.html", nav="endpoints", title="Endpoints", endpoints=infos)


@router.get("/endpoints/{name}")
def endpoint(request: Request, name: str) -> Response:
    """One endpoint: revisions (what model each serves, from which run), traffic per revision."""
    from workbench_dsl.backends.deployer import DeployError

    state = request.app.state.ui
    try:
        info = state.deployer().get(name)
    except DeployError as e:
        raise UsageError(str(e)) from None
    from workbench_dsl.backends.drift.report import cached_report

    drift = cached_report(state.root, name) if info.stable else None
    return page(
        request,
        "endpoint.html",
        nav="endpoints",
        title=f"Endpoint {name}",
        ep=_with_metrics(state, info),
        drift=None if drift is None or isinstance(drift, Exception) else drift.to_json(),
        drift_error=str(drift) if isinstance(drift, Exception) else None,
    )


def _deploy_action(request: Request, name: str, verb: str) -> Any:
    from workbench_dsl.backends.deployer import DeployError
    from workbench_dsl.backends.deployer.local import EndpointNotFound

    state = request.app.state.ui

    def work(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
        deployer = state.deployer()
        try:
            info = deployer.promote(name) if verb == "promote" else deployer.rollback(name)
        except EndpointNotFound as e:
            raise UsageError(str(e)) from None
        except DeployError as e:
            raise JobFailed(str(e)) from None
        if verb == "promote":
            line = f"{name}: {info.stable} now takes all traffic"
        else:
            line = f"{name}: canary dropped; {info.stable} takes all traffic"
        return line, {"endpoint": info.to_json()}

    return act(request, work, back=f"/endpoints/{name}")


@router.post("/endpoints/{name}/promote")
async def promote(request: Request, name: str) -> Response:
    """Send all traffic to the canary: it becomes the stable revision."""
    return await _deploy_action(request, name, "promote")


@router.post("/endpoints/{name}/rollback")
async def rollback(request: Request, name: str) -> Response:
    """Drop the canary: all traffic back to the stable revision."""
    return await _deploy_action(request, name, "rollback")
