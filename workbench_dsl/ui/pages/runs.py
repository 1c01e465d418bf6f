"""Runs: the paged, filterable list, a run's page (DAG, timeline, task logs and artifacts),
the live updates it follows, and the cost page."""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.responses import Response, StreamingResponse

from workbench_dsl.ui import runs_query
from workbench_dsl.ui.charts import bars
from workbench_dsl.ui.format import money
from workbench_dsl.ui.previews import image_mime, local_path, open_inside, schema_title
from workbench_dsl.ui.render import fragment, page
from workbench_dsl.ui.run_page import find_artifact, log_chunk, run_page
from workbench_dsl.ui.security import ARTIFACT_CSP, reads_contents

router = APIRouter()
#: Pages past this are refused (a 400, never a database error).
MAX_PAGE = 1_000_000


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs")
def runs_list(
    request: Request,
    pipeline: str = "",
    status: str = "",
    since: str = "",
    run: str = "",
    page_no: int = Query(1, alias="page", le=MAX_PAGE),
) -> Response:
    """The list of runs, newest first, 50 to a page."""
    f = runs_query.RunFilter(pipeline=pipeline, status=status, since=since, run=run.strip())
    conn = request.app.state.ui.runs().conn
    pages_no = max(1, page_no)
    rows, total = runs_query.page_of_runs(conn, f, pages_no)
    last = max(1, math.ceil(total / runs_query.PAGE_SIZE))
    return page(
        request,
        "runs.html",
        nav="runs",
        title="Runs",
        runs=rows,
        total=total,
        page_no=min(pages_no, last),
        last_page=last,
        filter=f,
        pipelines=runs_query.pipelines(conn),
        statuses=runs_query.STATUSES,
        since_options=list(runs_query.SINCE),
    )


@router.get("/runs/{run_id}")
def run_view(request: Request, run_id: str, task: str | None = None, offset: int = 0) -> Response:
    """One run: status, cost, DAG, timeline, tasks (a page), and the chosen task's details."""
    data = _withhold_contents(
        request, run_page(request.app.state.ui.runs(), run_id, task, max(0, offset))
    )
    return page(request, "run.html", nav="runs", title=f"Run {data['run']['run_id']}", **data)


@router.get("/runs/{run_id}/live")
def run_live(request: Request, run_id: str, task: str | None = None, offset: int = 0) -> Response:
    """The parts of a run's page that change while it runs (swapped in by ui.js)."""
    data = _withhold_contents(
        request, run_page(request.app.state.ui.runs(), run_id, task, max(0, offset))
    )
    html = fragment("run_live.html", csrf=request.app.state.access.csrf, **data)
    return Response(html, media_type="text/html; charset=utf-8", headers={"x-sig": data["sig"]})


def _withhold_contents(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """Without the token, the page shows no artifact previews (logs are fetched apart)."""
    data["contents_hidden"] = not reads_contents(request)
    selected = data.get("selected")
    if data["contents_hidden"] and selected:
        for side in ("inputs", "outputs"):
            for a in selected[side]["artifacts"]:
                a["preview"] = None
    return data


@router.get("/api/runs/{run_id}")
def run_state(request: Request, run_id: str) -> JSONResponse:
    """A run's status and a signature that changes whenever its page would."""
    from workbench_dsl.engine.run_view import run_details
    from workbench_dsl.ui.run_page import signature

    store = request.app.state.ui.runs()
    details = run_details(store, store.find_run(run_id))
    return JSONResponse(
        {
            "run_id": details["run_id"],
            "status": details["status"],
            "sig": signature(details),
            "tasks": {t["name"]: t["status"] for t in details["tasks"]},
        }
    )


@router.get("/api/runs/{run_id}/log")
def run_log(
    request: Request, run_id: str, task: str, attempt: int | None = None, offset: int = -1
) -> JSONResponse:
    """New bytes of a task attempt's log from ``offset`` (to follow it while it runs)."""
    state = request.app.state.ui
    store = state.runs()
    real_id = store.find_run(run_id)["run_id"]
    return JSONResponse(log_chunk(store, state.root.root, real_id, task, attempt, offset))


@router.get("/runs/{run_id}/artifact")
def artifact_file(
    request: Request,
    run_id: str,
    task: str,
    name: str,
    side: str = "outputs",
    i: int = 0,
    download: int = 0,
) -> Response:
    """An artifact's file: HTML only into a sandboxed frame, everything else as plain text or
    a download."""
    store = request.app.state.ui.runs()
    real_id = store.find_run(run_id)["run_id"]
    art = find_artifact(store, real_id, task, side, name, i)
    path = local_path(art) if art else None
    if art is None or path is None:
        return PlainTextResponse("no such artifact file here\n", status_code=404)
    try:
        fd = open_inside(path)  # never through a link
    except OSError as e:
        return PlainTextResponse(
            f"not served: {'the artifact is a link' if e.errno == errno.ELOOP else e.strerror}\n",
            status_code=403 if e.errno == errno.ELOOP else 404,
        )
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return PlainTextResponse(
            "this artifact is a directory; its files are listed on the run page\n",
            status_code=400,
        )
    os.set_blocking(fd, True)
    f = os.fdopen(fd, "rb")
    head = f.read(16)
    f.seek(0)
    if download:
        filename = quote(path.name or name)
        return StreamingResponse(
            _chunks(f),
            media_type="application/octet-stream",
            headers={"content-disposition": f"attachment; filename*=utf-8''{filename}"},
        )
    is_html = schema_title(art) == "system.HTML" or path.suffix.lower() in (".html", ".htm")
    media = (
        "text/html; charset=utf-8"
        if is_html
        else image_mime(path, head) or "text/plain; charset=utf-8"
    )
    return StreamingResponse(
        _chunks(f),
        media_type=media,
        headers={"content-security-policy": ARTIFACT_CSP, "x-frame-options": "SAMEORIGIN"},
    )


def _chunks(f: Any) -> Iterator[bytes]:
    with f:
        while chunk := f.read(64 * 1024):
            yield chunk


@router.get("/costs")
def costs(request: Request) -> Response:
    """What runs cost: per pipeline, recently, the most expensive runs and the burn rate now."""
    conn = request.app.state.ui.runs().conn
    totals = runs_query.pipeline_totals(conn)
    rate, running = runs_query.burn_rate(conn)
    chart = bars([(t["pipeline"], t["cost"]) for t in totals[:15]], fmt=money) if totals else None
    recent: dict[str, Any] = {
        label: runs_query.cost_since(conn, seconds)
        for label, seconds in (("last 24 hours", 86400), ("last 7 days", 7 * 86400))
    }
    return page(
        request,
        "costs.html",
        nav="costs",
        title="Costs",
        totals=totals,
        total=sum(t["cost"] for t in totals),
        rate=rate,
        running=running,
        chart=chart,
        recent=recent,
        expensive=runs_query.most_expensive(conn),
    )
