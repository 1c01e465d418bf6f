"""The activator of a scale-to-zero endpoint: it keeps the port while the model server sleeps.

For an endpoint deployed with ``min_replicas=0`` the process recorded on its port
is this one (KServe's Knative activator plays the same part on a cluster). It
forwards every request to the endpoint's model server, a child process on a
private loopback port, and counts the requests in flight (:mod:`._activity`).
After ``scale_to_zero_after`` seconds with none it stops the model server and
its whole process tree. The next request starts it again and waits: one cold
start however many requests arrive meanwhile, bounded by the cold start timeout,
after which every waiting request gets a 503 with ``Retry-After`` and the reason.
Each cold start is timed and recorded (``workbench endpoints show``, ``/metrics``).

What never wakes the model: health, readiness (a sleeping endpoint is ready: the
next request will be answered), ``/metrics`` and the status route, and any
request the model server would refuse anyway: a foreign ``Host`` or origin, a
missing or wrong bearer token, the model-repository routes, a routing change
without the admin secret. Those rules are :class:`._router.Guard`'s, checked here
too because ``_router`` imports kserve, which this process must not load: the
point of scaling to zero is that what stays up is small. The model server
checks them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hmac
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from workbench_dsl import _detach
from workbench_dsl.backends.deployer import token_hash
from workbench_dsl.backends.deployer._activity import IdleCollector, IdleMeter, passive
from workbench_dsl.backends.deployer._process import free_port, tail, terminate
from workbench_dsl.backends.deployer._proxy import (
    bearer,
    forward,
    header,
    read_body,
    reply,
    reply_json,
)
from workbench_dsl.backends.deployer._store import EndpointStore
from workbench_dsl.paths import LocalRoot

#: Seconds a request waits for a cold start before its 503 (WORKBENCH_COLD_START_TIMEOUT_S).
DEFAULT_COLD_START_TIMEOUT_S = 90.0
#: What a 503 after a failed cold start tells the client to wait before trying again.
RETRY_AFTER_S = 5
ADMIN_HEADER = "x-workbench-admin"
_REPOSITORY = ("/v2/repository", "/v1/repository")
COLD_START_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 90, 120)


class Scale(enum.Enum):
    """What the endpoint's model server is doing."""

    SCALED_TO_ZERO = "scaled to zero"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


class ColdStartFailed(Exception):
    """The model server did not come up; the message is the one-line reason."""


class Activator:
    """Holds one endpoint's port; starts and stops its model server by the requests."""

    def __init__(self, root: LocalRoot, store: EndpointStore, name: str) -> None:
        row = store.get(name)
        assert row is not None
        self.root = root
        self.store = store
        self.name = name
        self.port = row.port
        self.hosts = frozenset(f"{h}:{row.port}" for h in ("127.0.0.1", "localhost", "[::1]"))
        self.admin = (root.endpoints / name / "admin.token").read_text(encoding="utf-8").strip()
        self.timeout = float(
            os.environ.get("WORKBENCH_COLD_START_TIMEOUT_S") or DEFAULT_COLD_START_TIMEOUT_S
        )
        self.scale = Scale.SCALED_TO_ZERO
        self.backend: subprocess.Popen[bytes] | None = None
        self.backend_port = 0
        self.meter = IdleMeter()
        self.lock = asyncio.Lock()  # a stop and a start never overlap
        self.starting: asyncio.Future[None] | None = None
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(IdleCollector(name, self.meter))
        self.cold_start_seconds = Histogram(
            "workbench_endpoint_cold_start_seconds",
            "Time from a request reaching a scaled-to-zero endpoint to its model server answering.",
            ["endpoint"],
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        ).labels(name)
        self.replicas = Gauge(
            "workbench_endpoint_replicas",
            "Model server processes running now (0 while scaled to zero).",
            ["endpoint"],
            registry=self.registry,
        ).labels(name)
        self.refresh()

    def refresh(self) -> None:
        """Read the endpoint's auth and idle time again (a deploy or a new token changed them)."""
        row = self.store.get(self.name)
        scaling = self.store.scaling(self.name)
        self.after = max(1, scaling.scale_to_zero_after)
        token = row is not None and row.auth == "token"
        self.token_hash = row.token_hash if token and row is not None else None
        self.locked = token and not self.token_hash

    # -- the model server -------------------------------------------------------------

    def running(self) -> bool:
        return (
            self.scale is Scale.RUNNING and self.backend is not None and self.backend.poll() is None
        )

    async def ensure_running(self) -> None:
        """Return once the model server answers; start it (once) if it does not run."""
        while not self.running():
            async with self.lock:  # a stop under way finishes first
                if self.running():
                    return
                if self.starting is None:
                    self.starting = asyncio.ensure_future(self._cold_start())
                    self.starting.add_done_callback(_retrieve)
                starting = self.starting
            await asyncio.shield(starting)

    async def _cold_start(self) -> None:
        t0 = time.monotonic()
        self.scale = Scale.STARTING
        error: str | None = None
        try:
            await asyncio.wait_for(self._spawn_and_wait(), self.timeout)
        except TimeoutError:
            # A large model (an LLM's weights) can need longer than the default.
            error = (
                f"the model server did not start within {self.timeout:g}s; a model that "
                f"loads slower needs a higher WORKBENCH_COLD_START_TIMEOUT_S"
            )
        except ColdStartFailed as e:
            error = str(e)
        seconds = time.monotonic() - t0
        if error is None:
            self.scale = Scale.RUNNING
            self.replicas.set(1)
            self.cold_start_seconds.observe(seconds)
        else:
            await self._stop_backend()
        self.starting = None
        await asyncio.to_thread(self.store.add_cold_start, self.name, seconds, error)
        if error is not None:
            raise ColdStartFailed(f"endpoint {self.name}: {error}")

    async def _spawn_and_wait(self) -> None:
        (self.root.endpoints / self.name / "startup.error").unlink(missing_ok=True)
        self.backend_port = free_port({self.port})
        # Its output goes where ours does: the endpoint's server.log.
        self.backend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                _detach.ENDPOINT_SERVER,
                "backend",
                self.name,
                str(self.backend_port),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        while True:
            if self.backend.poll() is not None:
                raise ColdStartFailed(self._startup_error(self.backend.returncode))
            if await self._answers():
                return
            await asyncio.sleep(0.05)

    async def _answers(self) -> bool:
        try:
            r = await self.client.get(
                f"http://127.0.0.1:{self.backend_port}/_workbench/status",
                headers={"host": f"127.0.0.1:{self.port}"},
                timeout=2.0,
            )
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("endpoint") == self.name

    def _startup_error(self, code: int | None) -> str:
        err = self.root.endpoints / self.name / "startup.error"
        if err.exists():
            return "the model failed to load: " + err.read_text(encoding="utf-8").strip()
        last = tail(self.root.endpoints / self.name / "server.log", 1)
        return f"the model server exited with code {code}: {last}"

    async def _stop_backend(self) -> None:
        proc, self.backend = self.backend, None
        if proc is not None:
            await asyncio.to_thread(terminate, proc.pid)
            proc.wait()
        self.replicas.set(0)
        self.scale = Scale.SCALED_TO_ZERO

    async def reap(self) -> None:
        """Stop the model server once it has been idle for ``after`` seconds (or has died)."""
        while True:
            await asyncio.sleep(min(1.0, max(0.1, self.after / 10)))
            if self.scale is Scale.RUNNING and not self.running():
                async with self.lock:  # it died: the next request starts it again
                    if self.scale is Scale.RUNNING and not self.running():
                        await self._stop_backend()
                continue
            if self.scale is not Scale.RUNNING or self.meter.idle_for() < self.after:
                continue
            async with self.lock:
                if self.scale is Scale.RUNNING and self.meter.idle_for() >= self.after:
                    # Set before the first await: a request from now on waits for the lock.
                    self.scale = Scale.STOPPING
                    await self._stop_backend()

    # -- the ASGI app -------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        refusal = self._refusal(scope, path)
        if refusal is not None:
            await reply(send, *refusal)
            return
        if path.startswith("/_workbench/status"):
            await reply_json(send, 200, self.status())
            return
        if path == "/metrics":
            await self._metrics(send)
            return
        if passive(path, self.name):
            if self.running():
                await self._forward(scope, b"", send)
            else:  # asleep is ready: the next request will be answered
                await reply_json(send, 200, {"name": self.name, "ready": True, "live": True})
            return
        if path.startswith("/_workbench/") and not path.startswith("/_workbench/routing"):
            await reply(send, 404, f"no route {path}")
            return
        body = await read_body(receive, send)
        if body is None:
            return  # the client went away, or was answered already
        self.meter.enter()  # before any await: the reaper sees this request from now on
        try:
            try:
                await self.ensure_running()
            except ColdStartFailed as e:
                await reply(send, 503, str(e), {"retry-after": str(RETRY_AFTER_S)})
                return
            await self._forward(scope, body, send, receive)
            if path.startswith("/_workbench/routing"):
                await asyncio.to_thread(self.refresh)
        finally:
            self.meter.exit()

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "pid": os.getpid(),
            "mode": "scale-to-zero",
            "scale": Scale.RUNNING.value if self.scale is Scale.STOPPING else self.scale.value,
            "model_server_pid": self.backend.pid if self.backend is not None else None,
            "scale_to_zero_after": self.after,
            "in_flight": self.meter.in_flight,
            "idle_ratio": round(self.meter.idle_ratio(), 6),
            "idle_window_s": self.meter.window,
        }

    def _refusal(self, scope: dict[str, Any], path: str) -> tuple[int, str, dict[str, str]] | None:
        if sum(key == b"host" for key, _ in scope.get("headers", [])) > 1:
            # Which one counts is each parser's guess (RFC 9112 3.2: a 400).
            return 400, "a request names one Host header, not several", {}
        host = header(scope, b"host")
        if host is None or host.lower() not in self.hosts:
            return 403, "this endpoint answers requests for 127.0.0.1 or localhost only", {}
        origin = header(scope, b"origin")
        if (origin is not None and origin.lower().partition("://")[2] not in self.hosts) or header(
            scope, b"sec-fetch-site"
        ) == "cross-site":
            return 403, "cross-site requests are refused", {}
        if path.startswith(_REPOSITORY):
            return 404, "the model-repository routes (load, unload, index) are not served", {}
        if path.startswith("/_workbench/routing"):
            admin = header(scope, ADMIN_HEADER.encode()) or ""
            if not hmac.compare_digest(admin, self.admin):
                return 403, "admin secret required", {}
            return None
        if passive(path, self.name) or path.startswith("/_workbench/"):
            return None
        if self.locked:
            return (
                401,
                f"endpoint {self.name} has no bearer token yet: make one with "
                f"`workbench endpoints token {self.name}`",
                {"www-authenticate": "Bearer"},
            )
        if self.token_hash:
            given = bearer(scope)
            if given is None or not hmac.compare_digest(token_hash(given), self.token_hash):
                return (
                    401,
                    "this endpoint needs Authorization: Bearer <token>"
                    if given is None
                    else "invalid token",
                    {"www-authenticate": "Bearer"},
                )
        return None

    async def _forward(
        self, scope: dict[str, Any], body: bytes, send: Any, receive: Any = None
    ) -> None:
        base = f"http://127.0.0.1:{self.backend_port}"
        try:
            # A streamed answer (an LLM's server-sent events) is in flight until its last
            # chunk is passed on or its client leaves: never idle mid-stream.
            await forward(self.client, base, scope, body, send, receive)
        except httpx.HTTPError as e:
            await reply(send, 502, f"endpoint {self.name}: the model server did not answer ({e})")

    async def _metrics(self, send: Any) -> None:
        text = b""
        if self.running():
            with contextlib.suppress(httpx.HTTPError):
                r = await self.client.get(
                    f"http://127.0.0.1:{self.backend_port}/metrics",
                    headers={"host": f"127.0.0.1:{self.port}"},
                    timeout=5.0,
                )
                if r.status_code == 200:
                    text = r.content
        text += generate_latest(self.registry)
        headers = [
            (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
            (b"content-length", str(len(text)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": text})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        reaper: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                reaper = asyncio.create_task(self.reap())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if reaper is not None:
                    reaper.cancel()
                async with self.lock:
                    await self._stop_backend()
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def serve_activator(root: LocalRoot, store: EndpointStore, name: str) -> int:
    """Serve the scale-to-zero endpoint ``name`` on its recorded port until SIGTERM."""
    import uvicorn

    from workbench_dsl.backends.deployer._slow_clients import KEEP_ALIVE_S, protocol_class

    activator = Activator(root, store, name)
    config = uvicorn.Config(
        activator,
        host="127.0.0.1",
        port=activator.port,
        http=protocol_class(),  # the same header deadline as the model server's
        timeout_keep_alive=KEEP_ALIVE_S,
        lifespan="on",
        access_log=False,
        server_header=False,  # the model server's own headers are forwarded
        date_header=False,
        log_level="warning",
    )
    uvicorn.Server(config).run()
    return 0


def _retrieve(future: asyncio.Future[None]) -> None:
    """Every waiter has the failure already; a start nobody awaits any more is no error."""
    if not future.cancelled():
        future.exception()
