"""Lineage: the graph around any artifact, run, model version or endpoint, from the same
report ``workbench lineage TARGET`` prints (:func:`~workbench_dsl.backends.lineage.report.lineage_report`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from workbench_dsl.errors import UsageError
from workbench_dsl.ui.lineage_draw import draw, link_of, target_of
from workbench_dsl.ui.render import page

router = APIRouter()


@router.get("/lineage")
def lineage(request: Request, target: str = "", depth: int = 50) -> Response:
    """Without a target: what lineage knows about; with one: its graph upstream and downstream."""
    from workbench_dsl.backends.lineage.report import lineage_report, overview

    graph = request.app.state.ui.lineage()
    target = target.strip()
    if not target:
        groups = {
            key: [
                {**n.to_json(), "target": target_of(n.to_json()), "link": link_of(n.to_json())}
                for n in reversed(nodes)
            ]
            for key, nodes in overview(graph, runs=20).items()
        }
        return page(
            request, "lineage.html", nav="lineage", title="Lineage", target="", groups=groups
        )
    error = None
    report = None
    try:
        if not graph.nodes:
            raise UsageError("no lineage recorded yet: run a pipeline first")
        report = lineage_report(graph, target, depth=max(1, min(depth, 200)))
    except UsageError as e:
        error = str(e)
    nodes = report["nodes"] if report else {}
    return page(
        request,
        "lineage.html",
        nav="lineage",
        title=f"Lineage of {target}",
        target=target,
        error=error,
        svg=draw(report) if report else None,
        focus=nodes.get(report["target"]) if report else None,
        nodes=sorted(
            ({**n, "link": link_of(n)} for n in nodes.values()),
            key=lambda n: (str(n.get("kind")), str(n.get("label"))),
        ),
        status_code=404 if error else 200,
        groups=None,
    )
