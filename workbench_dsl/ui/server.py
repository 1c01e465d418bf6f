"""Start the dashboard: bind 127.0.0.1 (by default), print the URL with its access token, serve."""

from __future__ import annotations

import errno
import secrets
import socket
import sys
import threading
import webbrowser
from typing import TextIO

from workbench_dsl.errors import UsageError
from workbench_dsl.paths import LocalRoot, local_root
from workbench_dsl.ui.security import Access, is_loopback

DEFAULT_PORT = 8765


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if port and e.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is in use; pick another with --port (or --port 0 for any)"
            ) from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool = False,
    root: LocalRoot | None = None,
    tracking_uri: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the dashboard until Ctrl-C; prints the URL (with the token) on ``out`` first."""
    import uvicorn

    from workbench_dsl.ui.app import create_app

    out = out or sys.stdout
    root = root or local_root()
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    access = Access(token=token or secrets.token_urlsafe(24), bind_host=host, port=real_port)
    app = create_app(root, access, tracking_uri=tracking_uri)
    url = f"{url_of(host, real_port)}/?token={access.token}"
    print(f"workbench ui: {url}", file=out, flush=True)
    print(f"  local root: {root.root}", file=out, flush=True)
    if not (is_loopback(host) or host == "localhost"):
        print(
            f"  listening on {host}: every request from another machine needs the token",
            file=out,
            flush=True,
        )
    print("  actions need the token; press Ctrl-C to stop", file=out, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
