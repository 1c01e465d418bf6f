"""The activator's relay (``_proxy.forward``) against a real streaming server on 127.0.0.1.

A streamed answer (an LLM's server-sent events) is passed on chunk by chunk, not
once it is complete; and when the client goes away mid-stream the relay stops at
once and closes the model server's connection, so the server stops its work and
the request stops counting as in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from workbench_dsl.backends.deployer._process import free_port
from workbench_dsl.backends.deployer._proxy import forward

WAIT_S = 10.0


class Upstream:
    """A server whose stream sends one chunk, then waits for ``release`` before the last."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stopped = asyncio.Event()  # the stream ended early: its client went away
        self.port = free_port(set())

        async def stream(request: Request) -> StreamingResponse:
            async def events() -> AsyncIterator[bytes]:
                finished = False
                try:
                    yield b"data: first\n\n"
                    await self.release.wait()
                    yield b"data: [DONE]\n\n"
                    finished = True
                finally:
                    if not finished:
                        self.stopped.set()

            return StreamingResponse(events(), media_type="text/event-stream")

        app = Starlette(routes=[Route("/stream", stream, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)

    async def __aenter__(self) -> Upstream:
        self.task = asyncio.ensure_future(self.server.serve())
        async with asyncio.timeout(WAIT_S):
            while not self.server.started:
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        self.server.should_exit = True
        await self.task


def _scope(port: int) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/stream",
        "query_string": b"",
        "headers": [(b"host", f"127.0.0.1:{port}".encode())],
    }


def test_a_stream_is_passed_on_chunk_by_chunk() -> None:
    async def main() -> None:
        async with Upstream() as up, httpx.AsyncClient() as client:
            sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            never = asyncio.Event()

            async def receive() -> dict[str, Any]:
                await never.wait()
                return {"type": "http.disconnect"}

            base = f"http://127.0.0.1:{up.port}"
            relay = asyncio.ensure_future(
                forward(client, base, _scope(up.port), b"", sent.put, receive)
            )
            async with asyncio.timeout(WAIT_S):  # a buffering relay never gets here
                start = await sent.get()
                first = await sent.get()
            assert start["status"] == 200
            assert first["body"] == b"data: first\n\n" and first["more_body"]
            assert not relay.done()
            up.release.set()
            async with asyncio.timeout(WAIT_S):
                await relay
            rest = [sent.get_nowait() for _ in range(sent.qsize())]
            assert b"".join(m["body"] for m in rest) == b"data: [DONE]\n\n"
            assert not rest[-1].get("more_body")
            assert not up.stopped.is_set()

    asyncio.run(main())


def test_the_relay_stops_and_closes_upstream_when_the_client_leaves_mid_stream() -> None:
    async def main() -> None:
        async with Upstream() as up, httpx.AsyncClient() as client:
            sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            gone = asyncio.Event()

            async def receive() -> dict[str, Any]:
                await gone.wait()
                return {"type": "http.disconnect"}

            base = f"http://127.0.0.1:{up.port}"
            relay = asyncio.ensure_future(
                forward(client, base, _scope(up.port), b"", sent.put, receive)
            )
            async with asyncio.timeout(WAIT_S):
                await sent.get()
                await sent.get()  # the first chunk reached the client, the stream goes on
            gone.set()
            # The relay returns without the stream's end, and the upstream sees it go.
            async with asyncio.timeout(WAIT_S):
                await relay
                await up.stopped.wait()
            assert not up.release.is_set()

    asyncio.run(main())
