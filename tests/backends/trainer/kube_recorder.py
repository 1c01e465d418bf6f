"""A Kubernetes API server stand-in at the HTTP boundary: records requests, returns canned answers.

A real ``kubernetes.client.ApiClient`` is used; only its urllib3 pool manager is
replaced, so everything above the socket (serialisation, paths, query strings,
the client's error handling) is the real client's. Tests assert on the exact
requests (method, path, query, body).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import urllib3


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any

    def __repr__(self) -> str:
        return f"{self.method} {self.path} {self.query or ''}"


@dataclass
class Route:
    method: str
    pattern: str
    #: Each call takes the next answer; the last repeats. An answer is
    #: (status, body) where body is a dict (JSON), bytes or str; or a callable.
    answers: list[Any]
    calls: int = 0


@dataclass
class FakeAPIServer:
    routes: list[Route] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def on(self, method: str, pattern: str, *answers: Any) -> FakeAPIServer:
        self.routes.append(Route(method, pattern, list(answers)))
        return self

    def request(self, method: str, url: str, **kw: Any) -> urllib3.HTTPResponse:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        fields = kw.get("fields")
        if fields:
            query.update({k: str(v) for k, v in fields})
        body = kw.get("body")
        if isinstance(body, str | bytes) and body:
            body = json.loads(body)
        req = Request(method, parts.path, query, body)
        self.requests.append(req)
        for route in self.routes:
            if route.method == method and re.fullmatch(route.pattern, parts.path):
                answer = route.answers[min(route.calls, len(route.answers) - 1)]
                route.calls += 1
                if callable(answer):
                    answer = answer(req)
                status, payload = answer
                return _response(status, payload, kw.get("preload_content", True))
        return _response(404, {"kind": "Status", "message": f"no route for {req!r}"}, True)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


def _response(status: int, payload: Any, preload: bool) -> urllib3.HTTPResponse:
    if isinstance(payload, dict | list):
        data = json.dumps(payload).encode()
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = payload
    return urllib3.HTTPResponse(
        body=io.BytesIO(data),
        status=status,
        reason="OK" if status < 400 else "Error",
        headers={"content-type": "application/json"},
        preload_content=preload,
    )


def api_client(server: FakeAPIServer) -> Any:
    """A real ``ApiClient`` talking to ``server`` instead of the network."""
    from kubernetes import client

    config = client.Configuration()
    config.host = "https://k8s.test"
    api = client.ApiClient(config)
    api.rest_client.pool_manager = server
    return api


def pod_list(*pods: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": list(pods)}


def pod(name: str, index: int, phase: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "labels": {"batch.kubernetes.io/job-completion-index": str(index), **(labels or {})},
        },
        "status": {"phase": phase},
    }


Answer = Callable[[Request], tuple[int, Any]]
