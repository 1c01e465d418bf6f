"""Inside a local model server: the canary split, request checks and per-revision metrics.

The endpoint is one KServe model (named after the endpoint) whose ``predict``
picks a revision per request: exactly ``canary_percent`` of every 100
requests go to the canary, spread evenly, the rest to the stable revision.
Bad input (malformed body, wrong shape, an error the model raises on the
values) is a 400 with the model's message; bodies over the size limit are a
413; with ``auth="token"`` the inference routes need ``Authorization: Bearer``.

Before any of that, :class:`Guard` refuses what no client of a local endpoint
needs and a web page could abuse: KServe's model-repository routes (``load``,
``unload``, ``index``: they would let anyone take the model away), a ``Host``
that is not this server's loopback address (DNS rebinding), a browser request
from another origin (a CORS-simple POST needs no preflight), and a body that
does not arrive within the body timeout (a slow client holds a connection and
a worker slot otherwise).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest
from kserve.utils.utils import get_predict_input, get_predict_response
from prometheus_client import Counter, Histogram

from workbench_dsl.backends.deployer import token_hash
from workbench_dsl.backends.deployer._predictors import Predictor
from workbench_dsl.backends.deployer.requestlog import RequestLog

REVISION_HEADER = "x-workbench-revision"

REQUESTS = Counter(
    "workbench_endpoint_requests_total",
    "Prediction requests by revision and outcome.",
    ["endpoint", "revision", "outcome"],
)
LATENCY = Histogram(
    "workbench_endpoint_predict_seconds",
    "Time in the revision's predict, by revision.",
    ["endpoint", "revision"],
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Input errors a model raises on the values it was given: the client's fault (400).
_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)


@dataclass(frozen=True)
class Routing:
    """Which revisions serve and how requests are split (replaced whole, never mutated)."""

    stable: tuple[str, Predictor] | None = None
    canary: tuple[str, Predictor] | None = None
    canary_percent: int = 0

    def names(self) -> dict[str, Any]:
        return {
            "stable": self.stable[0] if self.stable else None,
            "canary": self.canary[0] if self.canary else None,
            "canary_percent": self.canary_percent if self.canary else 0,
        }


class RouterModel(Model):
    """The endpoint's KServe model: picks the stable or canary revision for each request."""

    def __init__(self, name: str) -> None:
        super().__init__(name, return_response_headers=True)
        self.routing = Routing()
        self._count = 0
        self.ready = False
        #: The endpoint's request log (None: nothing is logged, as in a pod).
        self.log: RequestLog | None = None

    def set_routing(self, routing: Routing) -> None:
        self.routing = routing
        self._count = 0
        self.ready = routing.stable is not None

    def pick(self) -> tuple[str, Predictor]:
        r = self.routing
        if r.stable is None:
            raise ModelNotReady(self.name, "no revision is serving")
        if r.canary is not None and r.canary_percent > 0:
            # Runs on the event loop thread only: the counter needs no lock.
            n = self._count
            self._count = n + 1
            p = r.canary_percent
            if ((n + 1) * p) // 100 != (n * p) // 100:
                return r.canary
        return r.stable

    def predict(  # type: ignore[override]
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        revision, predictor = self.pick()
        if response_headers is not None:
            response_headers[REVISION_HEADER] = revision
        instances = _instances(payload, predictor)
        start = time.perf_counter()
        try:
            result = predictor.predict(instances)
        except _INPUT_ERRORS as e:
            self._done(revision, "bad_input", start, instances)
            raise InvalidInput(f"{type(e).__name__}: {e}") from None
        except Exception:
            self._done(revision, "error", start, instances)
            raise
        self._done(revision, "ok", start, instances, result)
        response = get_predict_response(payload, result, self.name)
        if isinstance(payload, InferRequest):
            response.model_version = revision
        return response

    def _done(
        self, revision: str, outcome: str, start: float, instances: Any, result: Any = None
    ) -> None:
        elapsed = time.perf_counter() - start
        LATENCY.labels(self.name, revision).observe(elapsed)
        REQUESTS.labels(self.name, revision, outcome).inc()
        if self.log is not None:
            # Only a sample draw and a queue append here: the log's thread writes.
            self.log.record(revision, outcome, elapsed, instances, result)


def _instances(payload: dict[str, Any] | InferRequest, predictor: Predictor) -> Any:
    if isinstance(payload, dict):
        key = "instances" if "instances" in payload else "inputs"
        instances = payload.get(key)
        if not isinstance(instances, list):
            raise InvalidInput(
                'expected a JSON object {"instances": [...]} (V1) with a list of instances'
            )
        if predictor.takes_list:
            return instances
    elif not isinstance(payload, InferRequest):
        # A JSON null, list, string or number, or a body that is not JSON at all.
        raise InvalidInput(
            'expected a JSON object: {"instances": [...]} (V1) or {"inputs": [...]} (V2)'
        )
    elif not payload.inputs:
        raise InvalidInput("the V2 request has no inputs")
    try:
        values = get_predict_input(payload)
    except _INPUT_ERRORS as e:
        raise InvalidInput(f"{type(e).__name__}: {e}") from None
    if predictor.takes_list and hasattr(values, "tolist"):
        return values.tolist()
    return values


class Guard:
    """ASGI middleware: where requests may come from, size and time limits, the bearer token.

    Health, readiness, ``/metrics`` and the server's own control routes need no
    bearer token (the control routes check their own admin secret). Model
    readiness (``/v2/models/NAME/ready``, ``/v1/models/NAME``) is open too: it
    says only whether the model answers, which ``workbench endpoints list`` checks.
    """

    OPEN = ("/metrics", "/v2/health", "/_workbench/")
    #: KServe's model-repository extension (load, unload, index): never served.
    REPOSITORY = ("/v2/repository", "/v1/repository")

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        state: Any,
        hosts: frozenset[str] | None = None,
        body_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.state = state  # has .token_hash and .locked, replaced on reload
        self.hosts = hosts  # the Host values a request may name (None: any, as in a pod)
        self.body_timeout = body_timeout
        name = getattr(state, "name", "")
        self.ready_paths = {f"/v2/models/{name}/ready", f"/v1/models/{name}"} if name else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        refusal = self._refusal(scope, path)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await _reply(send, 413, _too_large(length, self.max_bytes))
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # Read the whole body here, within the size limit and the body timeout, then
            # replay it: the app never waits on a slow client.
            body = bytearray()
            try:
                async with asyncio.timeout(self.body_timeout):
                    more = True
                    while more:
                        message = await receive()
                        if message["type"] != "http.request":
                            return  # the client went away
                        body += message.get("body", b"")
                        more = message.get("more_body", False)
                        if len(body) > self.max_bytes:
                            await _reply(send, 413, _too_large(None, self.max_bytes))
                            return
            except TimeoutError:
                await _reply(
                    send,
                    408,
                    f"the request body did not arrive within {self.body_timeout:g}s",
                    {"connection": "close"},
                )
                return
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str, dict[str, str]] | None:
        """Why a request is refused before it reaches KServe (status, message, headers)."""
        if self.hosts is not None:
            if sum(key == b"host" for key, _ in scope.get("headers", [])) > 1:
                # Which one counts is each parser's guess (RFC 9112 3.2: a 400).
                return 400, "a request names one Host header, not several", {}
            host = _header(scope, b"host")
            if host is None or host.lower() not in self.hosts:
                return 403, "this endpoint answers requests for 127.0.0.1 or localhost only", {}
            origin = _header(scope, b"origin")
            site = _header(scope, b"sec-fetch-site")
            foreign_origin = origin is not None and origin.lower().partition("://")[2] not in (
                self.hosts
            )
            if foreign_origin or site == "cross-site":
                return 403, "cross-site requests are refused", {}
        if path.startswith(self.REPOSITORY):
            return 404, "the model-repository routes (load, unload, index) are not served", {}
        if getattr(self.state, "locked", False) and not self._open(path):
            return (
                401,
                f"endpoint {self.state.name} has no bearer token yet: make one with "
                f"`workbench endpoints token {self.state.name}`",
                {"www-authenticate": "Bearer"},
            )
        expected = self.state.token_hash
        if expected and not self._open(path):
            given = _bearer(scope)
            if given is None or not hmac.compare_digest(token_hash(given), expected):
                return (
                    401,
                    "this endpoint needs Authorization: Bearer <token>"
                    if given is None
                    else "invalid token",
                    {"www-authenticate": "Bearer"},
                )
        return None

    def _open(self, path: str) -> bool:
        return path in ("/", "") or path.startswith(self.OPEN) or path in self.ready_paths


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(length: int | None, limit: int) -> str:
    size = f" of {length} bytes" if length is not None else ""
    return f"request body{size} is over the limit of {limit} bytes"


async def _reply(
    send: Send, status: int, error: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
