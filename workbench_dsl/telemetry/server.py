"""``workbench metrics serve``: the Prometheus exposition on a loopback port, without the UI.

A plain WSGI app around prometheus_client's own ``make_wsgi_app`` that, like every local
server, binds loopback only and refuses a ``Host`` that does not name loopback (a
rebound DNS name), and answers ``/metrics`` only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from workbench_dsl.paths import LocalRoot

_LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
#: A ``Host`` value: a name or a bracketed IPv6 address, then a port if any. The whole value
#: counts ("localhost:1@evil" is no loopback name; two Host headers arrive joined by a comma).
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^\[\]:]*)(?::[0-9]{1,5})?")


def _loopback_host(header: str | None) -> bool:
    match = _HOST.fullmatch((header or "").strip().lower())
    return match is not None and match.group(1) in _LOOPBACK


def wsgi_app(root: LocalRoot) -> Callable[..., Iterable[bytes]]:
    """The ``/metrics`` app for ``root``."""
    from prometheus_client import make_wsgi_app

    from workbench_dsl.telemetry.prometheus import registry

    metrics = make_wsgi_app(registry(root))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _loopback_host(environ.get("HTTP_HOST")):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"this server answers on 127.0.0.1 or localhost only\n"]
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"see /metrics\n"]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per scrape is noise
        pass


def serve(root: LocalRoot, port: int, stop: threading.Event, ready: Callable[[int], None]) -> None:
    """Serve ``/metrics`` on ``127.0.0.1:port`` (0: any free port) until ``stop`` is set."""
    server = make_server(
        "127.0.0.1", port, wsgi_app(root), server_class=_Server, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    ready(server.server_port)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
