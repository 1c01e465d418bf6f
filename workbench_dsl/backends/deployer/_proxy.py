"""Plain HTTP for the activator (:mod:`._activator`): read a body, forward it, answer in JSON.

Nothing here imports kserve or FastAPI: the activator stays small while its model
server sleeps. The limits are the model server's own (``_router.Guard``).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx

#: The model server's limit (``_server.DEFAULT_MAX_REQUEST_BYTES``; WORKBENCH_MAX_REQUEST_BYTES).
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
#: Connection-level headers: never forwarded (RFC 9110 section 7.6.1).
_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"content-length",
}


async def forward(
    client: httpx.AsyncClient,
    base: str,
    scope: dict[str, Any],
    body: bytes,
    send: Any,
    receive: Any = None,
) -> None:
    """Send the request of ``scope`` (with ``body``) to ``base`` and stream its answer back.

    Each chunk is passed on as it arrives (an LLM's server-sent events reach the
    client token by token). With ``receive`` (the client's side, its body read
    already) the relay stops as soon as the client goes away: the model server's
    connection is closed, which cancels its work (an LLM stops generating), and
    the request stops counting as in flight. Without this the relay would read a
    long stream to its end for nobody, since uvicorn drops what is sent to a
    client that left instead of failing the send.

    Raises ``httpx.HTTPError`` when the request could not be sent (nothing was answered).
    """
    relay = _relay(client, base, scope, body, send)
    if receive is None:
        await relay
        return
    relaying = asyncio.ensure_future(relay)
    leaving = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({relaying, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        leaving.cancel()
        if not relaying.done():
            relaying.cancel()  # the client left (or we are cancelled): close the upstream
        try:
            await relaying
        except asyncio.CancelledError:
            if not leaving.done() or leaving.cancelled():
                raise  # we were cancelled ourselves, not by the client leaving


async def _disconnected(receive: Any) -> None:
    """Return once the client has gone (what else arrives on a read request is ignored)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a connection that cannot be read from is one the client left
        return


async def _relay(
    client: httpx.AsyncClient, base: str, scope: dict[str, Any], body: bytes, send: Any
) -> None:
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _HOP]
    query = scope.get("query_string", b"").decode("latin-1")
    request = client.build_request(
        scope.get("method", "GET"),
        base + scope.get("path", "/") + (f"?{query}" if query else ""),
        headers=headers,  # Host included: the model server checks it is the endpoint's own
        content=body,
    )
    response = await client.send(request, stream=True)
    try:
        # The body is passed on as it came (aiter_raw), so its length stands.
        raw = [
            (k, v) for k, v in response.headers.raw if k.lower() not in _HOP - {b"content-length"}
        ]
        await send({"type": "http.response.start", "status": response.status_code, "headers": raw})
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()


async def read_body(receive: Any, send: Any) -> bytes | None:
    """The whole body within the size limit and the body timeout (the model server's own
    limits: see ``_router.Guard``), or None when the client was answered or went away."""
    from workbench_dsl.backends.deployer._slow_clients import body_timeout

    limit = int(os.environ.get("WORKBENCH_MAX_REQUEST_BYTES") or DEFAULT_MAX_REQUEST_BYTES)
    timeout = body_timeout()
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    await reply(send, 413, f"request body is over the limit of {limit} bytes")
                    return None
    except TimeoutError:
        await reply(
            send,
            408,
            f"the request body did not arrive within {timeout:g}s",
            {"connection": "close"},
        )
        return None
    return bytes(body)


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


def bearer(scope: dict[str, Any]) -> str | None:
    scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def reply(send: Any, status: int, error: str, headers: dict[str, str] | None = None) -> None:
    await reply_json(send, status, {"error": error}, headers)


async def reply_json(
    send: Any, status: int, value: Any, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(value).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
