"""The model server process of one endpoint: ``python -m workbench_dsl.backends.deployer._server``.

``local NAME`` serves the recorded endpoint NAME on 127.0.0.1 (its port from the
run store): a KServe ``ModelServer``'s REST server (V1, V2, health,
``/metrics``) with the endpoint's stable and canary revisions loaded, and two
control routes the deployer uses to change the split without a restart:
``GET /_workbench/status`` and ``POST /_workbench/routing`` (the latter needs
the admin secret the deployer wrote, owner-only, beside the endpoint's log).
kserve binds 0.0.0.0 by default; this binds 127.0.0.1 only, serves none of
KServe's model-repository routes (load, unload, index), answers only requests
whose ``Host`` is its own loopback address, refuses cross-site browser
requests, and cuts off clients that send headers or bodies too slowly
(:mod:`._slow_clients`).

``pod`` serves one revision in a KServe InferenceService's custom container
(0.0.0.0:8080, the model under ``/mnt/models``): there Knative splits traffic.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the control routes'
# annotations at run time, and ``Request`` is imported inside the function.
import asyncio
import hmac
import logging
import os
import sys
from typing import Any

#: Bodies above this are refused with 413 (override: WORKBENCH_MAX_REQUEST_BYTES).
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
ADMIN_HEADER = "x-workbench-admin"


class ServerState:
    """What the control routes change: loaded revisions, the routing, the token hash."""

    def __init__(self, name: str, store: Any, router: Any) -> None:
        self.name = name
        self.store = store
        self.router = router
        self.loaded: dict[str, Any] = {}
        self.token_hash: str | None = None
        #: auth="token" but no token made yet: every inference request is refused.
        self.locked = False
        self.lock = asyncio.Lock()

    def refresh_auth(self) -> None:
        row = self.store.get(self.name)
        self.token_hash = row.token_hash if row is not None and row.auth == "token" else None
        self.locked = row is not None and row.auth == "token" and not row.token_hash

    def refresh_log(self, endpoint_dir: Any) -> None:
        """Re-read the request log's settings (a new deployment may have changed them)."""
        from workbench_dsl.backends.deployer.requestlog import RequestLog, log_dir, read_settings

        settings = read_settings(endpoint_dir)
        if self.router.log is None:
            self.router.log = RequestLog(log_dir(endpoint_dir), settings)
        else:
            self.router.log.configure(settings)

    def load(self, revision: str) -> Any:
        from workbench_dsl.backends.deployer._predictors import load_revision

        if revision in self.loaded:
            return self.loaded[revision]
        row = self.store.revision(self.name, revision)
        if row is None:
            raise LookupError(f"no revision {revision} of endpoint {self.name}")
        predictor = load_revision(row.storage, row.flavor, row.predictor_source, row.predictor_name)
        self.loaded[revision] = predictor
        return predictor

    def apply(self, stable: str | None, canary: str | None, percent: int) -> None:
        """Load what is missing, then switch atomically; a load error changes nothing."""
        from workbench_dsl.backends.deployer._router import Routing

        routing = Routing(
            stable=(stable, self.load(stable)) if stable else None,
            canary=(canary, self.load(canary)) if canary else None,
            canary_percent=int(percent) if canary else 0,
        )
        self.router.set_routing(routing)
        keep = {stable, canary}
        for rev in list(self.loaded):
            if rev not in keep:
                del self.loaded[rev]


def serve_local(name: str) -> int:
    """Serve the recorded endpoint ``name`` until SIGTERM."""
    from workbench_dsl.backends.deployer._store import EndpointStore
    from workbench_dsl.paths import local_root

    root = local_root().ensure()
    store = EndpointStore(root.runs_db)
    row = store.get(name)
    if row is None:
        print(f"no endpoint {name!r} recorded in {root.runs_db}", file=sys.stderr)
        return 2
    admin_file = root.endpoints / name / "admin.token"
    admin = admin_file.read_text(encoding="utf-8").strip()
    error_file = root.endpoints / name / "startup.error"
    error_file.unlink(missing_ok=True)

    _server, rest, app, router = _build(name, row.port, host="127.0.0.1")
    state = ServerState(name, store, router)
    state.refresh_auth()
    state.refresh_log(root.endpoints / name)
    try:
        state.apply(row.stable, row.canary, row.canary_percent)
    except Exception as e:
        error_file.write_text(f"{type(e).__name__}: {e}", encoding="utf-8")
        raise
    _add_control_routes(app, state, admin, root.endpoints / name)
    hosts = frozenset(f"{h}:{row.port}" for h in ("127.0.0.1", "localhost", "[::1]"))
    _add_guard(app, state, hosts=hosts)
    try:
        asyncio.run(_start(rest, app))
    finally:
        if router.log is not None:
            router.log.close()  # what is queued is written before the server exits
    return 0


def serve_in_pod() -> int:
    """Serve one revision inside a KServe custom container (Knative splits the traffic)."""
    from workbench_dsl.backends.deployer._predictors import load_revision
    from workbench_dsl.backends.deployer._router import Routing

    name = os.environ["WORKBENCH_ENDPOINT"]
    revision = os.environ.get("K_REVISION", f"{name}-predictor")
    predictor = load_revision(
        os.environ.get("WORKBENCH_MODEL_DIR", "/mnt/models"),
        os.environ.get("WORKBENCH_FLAVOR", "pyfunc"),
        os.environ.get("WORKBENCH_PREDICTOR_SOURCE") or None,
        os.environ.get("WORKBENCH_PREDICTOR_NAME") or None,
    )
    # A pod must listen on all interfaces: the cluster's network reaches it there.
    _server, rest, app, router = _build(name, int(os.environ.get("PORT", "8080")), host="0.0.0.0")
    router.set_routing(Routing(stable=(revision, predictor)))

    class _NoAuth:
        name = ""
        token_hash = None
        locked = False

    # The cluster's ingress decides which hosts reach the pod: no Host check here.
    _add_guard(app, _NoAuth(), hosts=None)
    asyncio.run(_start(rest, app))
    return 0


async def _start(rest: Any, app: Any) -> None:
    """Serve ``rest`` without KServe's model-repository routes (Guard refuses them too)."""
    rest.create_application()
    app.router.routes[:] = [
        r for r in app.router.routes if "/repository" not in str(getattr(r, "path", ""))
    ]
    await rest._server.serve()


def _build(name: str, port: int, *, host: str) -> tuple[Any, Any, Any, Any]:
    import kserve.model_server
    from kserve import ModelServer
    from kserve.protocol.rest.server import RESTServer

    from workbench_dsl.backends.deployer._router import RouterModel
    from workbench_dsl.backends.deployer._slow_clients import KEEP_ALIVE_S, protocol_class

    server = ModelServer(
        http_port=port,
        enable_grpc=False,  # its 0.0.0.0:8081 would clash between endpoints
        workers=1,
        grace_period=3,
        enable_latency_logging=False,
    )
    router = RouterModel(name)
    server.register_model(router)
    rest = RESTServer(
        "kserve.model_server:app",
        server.dataplane,
        server.model_repository_extension,
        port,
        grace_period=3,
    )
    rest.config.host = host  # kserve hard-codes 0.0.0.0
    rest.config.http = protocol_class()  # a deadline for each request's headers
    rest.config.timeout_keep_alive = KEEP_ALIVE_S
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if os.environ.get("WORKBENCH_ACCESS_LOG", "") in ("", "0"):
        # A line per request (uvicorn's access log, kserve's timings) grows the log
        # without bound and costs throughput; /metrics has the numbers.
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    return server, rest, kserve.model_server.app, router


def _add_guard(app: Any, state: Any, *, hosts: frozenset[str] | None) -> None:
    from workbench_dsl.backends.deployer._router import Guard
    from workbench_dsl.backends.deployer._slow_clients import body_timeout

    limit = int(os.environ.get("WORKBENCH_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES))
    app.add_middleware(
        Guard, max_bytes=limit, state=state, hosts=hosts, body_timeout=body_timeout()
    )


def _add_control_routes(app: Any, state: ServerState, admin: str, endpoint_dir: Any) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    async def status() -> dict[str, Any]:
        return {
            "endpoint": state.name,
            "pid": os.getpid(),
            "ready": state.router.ready,
            **state.router.routing.names(),
        }

    async def routing(request: Request) -> Any:
        if not hmac.compare_digest(request.headers.get(ADMIN_HEADER, ""), admin):
            return JSONResponse({"error": "admin secret required"}, status_code=403)
        body = await request.json()
        async with state.lock:
            try:
                await asyncio.to_thread(
                    state.apply,
                    body.get("stable"),
                    body.get("canary"),
                    int(body.get("canary_percent") or 0),
                )
            except Exception as e:
                return JSONResponse({"error": f"{type(e).__name__}: {e}".strip()}, status_code=422)
            state.refresh_auth()
            state.refresh_log(endpoint_dir)
        return await status()

    app.add_api_route("/_workbench/status", status, methods=["GET"])
    app.add_api_route("/_workbench/routing", routing, methods=["POST"])


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "local":
        return serve_local(argv[1])
    if argv == ["pod"]:
        return serve_in_pod()
    print(
        "usage: python -m workbench_dsl.backends.deployer._server (local NAME | pod)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
