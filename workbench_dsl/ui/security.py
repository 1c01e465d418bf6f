"""Who may read and act: an access token (as Jupyter's), loopback-only reads, CSRF-checked POSTs.

* ``workbench ui`` prints a URL with ``?token=...`` once; opening it stores the
  token in an HttpOnly, SameSite=Strict cookie and redirects to the same page
  without it. Scripts may send ``Authorization: Bearer <token>`` instead.
* Pages are open to clients on loopback without the token; any other client
  needs it. What may hold a secret -- task logs and artifact contents (the log
  API, artifact files, previews on the run page) -- needs the token from every
  client, as actions do: the local root is private (0700), and the dashboard
  must not open it to the other users of this machine.
* Actions (approve, reject, promote, rollback, pause, resume) are POSTs only, and
  need the token; with the cookie they also need the page's CSRF token and, when
  the browser sends one, a same-origin ``Origin``.
* Bound to loopback, requests must name a loopback ``Host``; bound elsewhere, reads
  without the token still must: a web page cannot reach the dashboard through DNS
  rebinding.
* Every page gets a strict Content-Security-Policy: scripts and styles only from
  the dashboard itself, no inline script, no frames of it elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: What an HTML artifact may do inside its frame: show itself, nothing more.
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
MAX_FORM_BYTES = 64 * 1024
#: A ``Host`` value: a name or a bracketed IPv6 address, then a port if any.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^\[\]:]*)(?::[0-9]{1,5})?")


class Forbidden(Exception):
    """A request the access rules refuse (the message says how to get access)."""


def is_loopback(addr: str | None) -> bool:
    """Whether a client address is this machine (127.0.0.0/8, ::1, ::ffff:127.x)."""
    if not addr:
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


@dataclass
class Access:
    """The dashboard's access rules for one server start."""

    token: str
    bind_host: str = "127.0.0.1"
    port: int = 0
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def cookie(self) -> str:
        # Cookies do not tell ports apart: two dashboards on one host keep separate ones.
        return f"workbench_ui_token_{self.port}"

    @property
    def csrf(self) -> str:
        """The CSRF token forms carry (the token itself never appears in a page)."""
        return hmac.new(self.key, b"csrf:" + self.token.encode(), hashlib.sha256).hexdigest()

    def valid(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.token.encode())

    @property
    def strict_host(self) -> bool:
        return self.bind_host in LOOPBACK_NAMES or is_loopback(self.bind_host)

    @staticmethod
    def loopback_host(host_header: str | None) -> bool:
        """Whether a ``Host`` header names this machine's loopback (port aside)."""
        # The whole value: a name that only starts like loopback ("localhost:1@evil",
        # "[::1]evil") is another name to some parser on the way.
        match = _HOST.fullmatch((host_header or "").strip().lower())
        return match is not None and match.group(1) in LOOPBACK_NAMES

    def bearer(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        return scheme.lower() == "bearer" and self.valid(value.strip())

    def authenticated(self, request: Request) -> bool:
        return self.bearer(request) or self.valid(request.cookies.get(self.cookie))

    def login_hint(self) -> str:
        return (
            "open the URL with ?token=... that `workbench ui` printed when it started, "
            "or send Authorization: Bearer <token>"
        )


#: Reads of what a task wrote (its log, its artifacts' bytes): these need the token.
_CONTENTS = re.compile(r"^/(api/runs/[^/]+/log|runs/[^/]+/artifact)/?$")


def reads_contents(request: Request) -> bool:
    """Whether this request may see logs and artifact contents (it carries the token)."""
    access: Access = request.app.state.access
    return access.authenticated(request)


async def guard(request: Request, call_next: Any) -> Response:
    """The middleware applying :class:`Access` to every request."""
    access: Access = request.app.state.access
    if len(request.headers.getlist("host")) > 1:
        # Which one counts is each parser's guess (RFC 9112 3.2: a 400).
        return _refuse(400, "a request names one Host header, not several")
    local_name = access.loopback_host(request.headers.get("host"))
    if access.strict_host and not local_name:
        return _refuse(403, "this dashboard answers on 127.0.0.1 or localhost only")
    given = request.query_params.get("token")
    if given is not None and request.method in ("GET", "HEAD"):
        if not access.valid(given):
            return _refuse(403, "wrong access token; " + access.login_hint())
        query = urlencode([(k, v) for k, v in parse_qsl(request.url.query) if k != "token"])
        # One leading slash: "//evil.example" (or "/%2Fevil.example") is another site's URL.
        path = "/" + request.url.path.lstrip("/\\")
        target = path + (f"?{query}" if query else "")
        response: Response = RedirectResponse(target, status_code=303)
        response.set_cookie(access.cookie, access.token, httponly=True, samesite="strict", path="/")
        return _headers(response)
    client = request.client.host if request.client else None
    if request.method in ("GET", "HEAD"):
        # Open reads need both ends local: a loopback client that asked for a loopback
        # name (not a rebound one), even when the server listens on other addresses too.
        if not ((is_loopback(client) and local_name) or access.authenticated(request)):
            return _refuse(403, "reads from other machines need the token: " + access.login_hint())
        if _CONTENTS.match(request.url.path) and not access.authenticated(request):
            return _refuse(403, "logs and artifacts need the token: " + access.login_hint())
    elif request.method == "POST":
        if not access.authenticated(request):
            return _refuse(403, "actions need the access token: " + access.login_hint())
        origin = request.headers.get("origin")
        if origin and not access.bearer(request) and origin != _own_origin(request):
            return _refuse(403, f"refused a cross-site request from {origin}")
    else:
        return _refuse(405, f"{request.method} is not allowed here")
    try:
        return _headers(await call_next(request))
    except Exception:
        # Still a bug to fix, but the answer keeps the headers and shows no traceback.
        logging.getLogger("workbench.ui").exception("error answering %s", request.url.path)
        return _refuse(500, "internal error (the dashboard's log has the details)")


async def action_form(request: Request) -> dict[str, str]:
    """The fields of an action's form, after the CSRF check (skipped for bearer clients)."""
    access: Access = request.app.state.access
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Forbidden("the form is too large")
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if not access.bearer(request):
        sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
        if not hmac.compare_digest(sent.encode(), access.csrf.encode()):
            raise Forbidden("the form's CSRF token is missing or stale; reload the page")
    return form


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def _refuse(status: int, message: str) -> Response:
    return _headers(PlainTextResponse(message + "\n", status_code=status))


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("content-security-policy", PAGE_CSP)
    h.setdefault("x-content-type-options", "nosniff")
    h.setdefault("referrer-policy", "same-origin")
    h.setdefault("x-frame-options", "DENY")
    h.setdefault("cache-control", "no-store")
    return response
