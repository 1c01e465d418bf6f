"""How a dashboard action runs and answers: the checked form, the shared function the CLI
command calls too, then a redirect back with a one-line message (or JSON for scripts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from workbench_dsl.errors import WorkbenchError
from workbench_dsl.ui.security import action_form


def safe_next(target: str | None, default: str) -> str:
    """A local path to go back to (never another site: no scheme, no host, no ``//``)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


async def act(
    request: Request,
    work: Callable[[dict[str, str]], tuple[str, dict[str, Any]]],
    *,
    back: str,
    expected: tuple[type[BaseException], ...] = (),
) -> Response:
    """Run ``work(form)`` (it returns a message and data) in a worker thread and answer.

    A :class:`~workbench_dsl.errors.WorkbenchError` (or one of ``expected``) is the
    user's to act on: its one line goes back as the message, with status 400 for JSON.
    """
    form = await action_form(request)
    target = safe_next(form.get("next"), back)
    caught: tuple[type[BaseException], ...] = (WorkbenchError, *expected)
    try:
        message, data = await run_in_threadpool(work, form)
        ok = True
    except caught as e:
        message, data, ok = str(e), {}, False
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": ok, "message": message, **data}, status_code=200 if ok else 400)
    key = request.app.state.ui.flash(message, "ok" if ok else "error")
    path, _, anchor = target.partition("#")
    sep = "&" if "?" in path else "?"
    return RedirectResponse(
        f"{path}{sep}flash={key}" + (f"#{anchor}" if anchor else ""), status_code=303
    )
