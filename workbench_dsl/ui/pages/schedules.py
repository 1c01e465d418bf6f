"""Schedules: each local schedule's next fire times and last runs; Pause and Resume call what
``workbench schedule pause`` and ``resume`` call (:func:`workbench_dsl.schedule.view.set_paused`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from workbench_dsl.ui.actions import act
from workbench_dsl.ui.render import page

router = APIRouter()


@router.get("/schedules")
def schedules(request: Request) -> Response:
    """Every local schedule: cron, timezone, state, the next five ticks and the last runs."""
    from workbench_dsl.schedule.view import local_view

    store = request.app.state.ui.schedules()
    views = [local_view(s, store, 5) for s in store.all()]
    return page(request, "schedules.html", nav="schedules", title="Schedules", schedules=views)


def _pause_action(request: Request, name: str, paused: bool) -> Any:
    state = request.app.state.ui

    def work(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
        from workbench_dsl.schedule.view import set_paused

        view = set_paused(state.schedules(), name, paused)
        nxt = view["next_ticks"][0] if view["next_ticks"] else None
        line = f"paused {name}" if paused else f"resumed {name}; next run {nxt}"
        return line, {"schedule": view}

    return act(request, work, back="/schedules")


@router.post("/schedules/{name}/pause")
async def pause(request: Request, name: str) -> Response:
    """Stop starting runs of a schedule (runs in flight go on)."""
    return await _pause_action(request, name, True)


@router.post("/schedules/{name}/resume")
async def resume(request: Request, name: str) -> Response:
    """Start a paused schedule again, from now on."""
    return await _pause_action(request, name, False)
