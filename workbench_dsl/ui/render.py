"""Pages rendered from the packaged Jinja2 templates, with autoescape always on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from workbench_dsl.ui.charts import split_bar
from workbench_dsl.ui.format import FILTERS

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    # Every {{ value }} is escaped, whatever the template's name: names of pipelines,
    # tasks, artifacts and models are user input.
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(FILTERS)
_env.globals["split_bar"] = split_bar


def page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` with the context every page needs (CSRF token, message, nav)."""
    state = request.app.state.ui
    flash = state.take_flash(request.query_params.get("flash"))
    html = _env.get_template(template).render(
        request=request,
        csrf=request.app.state.access.csrf,
        flash=flash,
        nav=context.pop("nav", ""),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def fragment(template: str, **context: Any) -> str:
    """A template rendered on its own (the live parts of a page)."""
    return _env.get_template(template).render(**context)
