"""A recording stand-in for the KFP API server on 127.0.0.1: canned v2beta1 answers, every
request kept (method, path with query, JSON body) so tests assert on exactly what was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any]]


class KfpApiDouble:
    """Routes: {(METHOD, path): handler or (status, body)}; anything else answers 404."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[tuple[str, str], Any] = {
            ("GET", "/apis/v2beta1/healthz"): (200, {"multi_user": False}),
        }
        double = self

        class H(BaseHTTPRequestHandler):
            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                parts = urlsplit(self.path)
                double.requests.append(
                    {
                        "method": method,
                        "path": parts.path,
                        "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                        "body": body,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )
                route = double.routes.get((method, parts.path))
                if route is None:
                    status, out = (
                        404,
                        {
                            "error": f"no route {method} {parts.path}",
                            "code": 5,
                            "message": "Not Found",
                        },
                    )
                elif callable(route):
                    status, out = route(method, parts.path, parse_qs(parts.query), body)
                else:
                    status, out = route
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


EXPERIMENT = {"experiment_id": "exp-1", "display_name": "Default", "namespace": ""}


def experiments(found: bool = True) -> tuple[int, Any]:
    return 200, ({"experiments": [EXPERIMENT], "total_size": 1} if found else {})


def recurring_run(
    rid: str,
    name: str,
    *,
    mode: str = "ENABLE",
    cron: str = "0 0 3 * * 0",
    created: str = "2024-01-01T00:00:00Z",
    spec: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "recurring_run_id": rid,
        "display_name": name,
        "experiment_id": "exp-1",
        "mode": mode,
        "max_concurrency": "1",
        "no_catchup": False,
        "trigger": {"cron_schedule": {"cron": cron}},
        "runtime_config": {"parameters": params or {}},
        "pipeline_spec": spec or {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}},
        "created_at": created,
    }
