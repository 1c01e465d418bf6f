"""Time limits against slow clients of a local model server (a slowloris holds a connection open).

uvicorn has a keep-alive timeout between requests but none while a request's
headers arrive: a client that sends one header line every few seconds keeps
its connection (and, with enough of them, the server) forever. This protocol
closes a connection whose request line and headers have not all arrived within
the header timeout, counted from the connection or the request's first byte.
The body has its own timeout, in :class:`~._router.Guard`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

# httptools is what uvicorn picks when it is installed, and kserve requires uvicorn[standard].
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Seconds a client has to send a request's line and headers (WORKBENCH_HEADER_TIMEOUT_S).
DEFAULT_HEADER_TIMEOUT_S = 10.0
#: Seconds a client has to send a request's body (WORKBENCH_BODY_TIMEOUT_S).
DEFAULT_BODY_TIMEOUT_S = 30.0
#: Seconds an idle keep-alive connection stays open (kserve's default is 65).
KEEP_ALIVE_S = 5


def header_timeout() -> float:
    return float(os.environ.get("WORKBENCH_HEADER_TIMEOUT_S") or DEFAULT_HEADER_TIMEOUT_S)


def body_timeout() -> float:
    return float(os.environ.get("WORKBENCH_BODY_TIMEOUT_S") or DEFAULT_BODY_TIMEOUT_S)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline for each request's headers."""

    timeout_s = DEFAULT_HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.timeout_s, self._too_slow)

    def _disarm(self) -> None:
        timer: Any = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        msg = f"request headers did not arrive within {self.timeout_s:g}s"
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(msg)}\r\nconnection: close\r\n\r\n{msg}".encode()
        )
        self.transport.close()


def protocol_class() -> type[HeaderTimeoutProtocol]:
    """The protocol class with this process's header timeout."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"timeout_s": header_timeout()})
