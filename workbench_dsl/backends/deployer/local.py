"""The local deployer: one detached KServe model server process per endpoint, on 127.0.0.1.

A deployment records a revision, makes sure the endpoint's server runs, and
asks it to load the revision and switch the split (``POST /_workbench/routing``);
only when that worked is the new split recorded. A model that fails to load
fails the deployment with its own error, and the previous revision keeps
serving. Servers are started in a session of their own, so they outlive the
task and the pipeline run; ``up`` starts the recorded ones again.

An endpoint is ``running`` only when its server answers for it and KServe says
its model is ready (``/v2/models/NAME/ready``); a server whose process is there
but does not answer is ``not answering``, and ``up`` replaces it.

With ``min_replicas=0`` the process on the endpoint's port is its activator
(:mod:`._activator`), which stops the model server when idle and starts it for
the next request: such an endpoint is ``scaled to zero``, ``starting`` or
``running``, and all three are up (``up`` leaves them alone). A deploy, promote,
rollback or new token goes through the activator and wakes the model server, so
a new revision is loaded (and its load error reported) at once.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench_dsl.backends.deployer import (
    DeployError,
    DeployResult,
    DeploySpec,
    EndpointInfo,
    ScaleInfo,
    check_endpoint_name,
    token_hash,
)
from workbench_dsl.backends.deployer._health import health, healthy_status, ours
from workbench_dsl.backends.deployer._process import (
    alive,
    free_port,
    http,
    port_free,
    spawn_server,
    tail,
    terminate,
)
from workbench_dsl.backends.deployer._store import EndpointRow, EndpointStore, Scaling
from workbench_dsl.paths import LocalRoot

ADMIN_HEADER = "x-workbench-admin"
START_TIMEOUT_S = 90.0


class EndpointNotFound(DeployError):
    pass


def _llm_options(spec: DeploySpec) -> str | None:
    """An LLM revision's knobs as the store keeps them (JSON); checks Transformers is there."""
    if spec.kind != "llm":
        return None
    import importlib.util
    import json

    from workbench_dsl.backends.deployer._llm_engine import INSTALL_HINT

    if importlib.util.find_spec("transformers") is None:
        raise DeployError(
            f"endpoint {spec.endpoint}: LLM endpoints need Transformers: {INSTALL_HINT}"
        )
    options = spec.llm.to_json() if spec.llm is not None else {}
    return json.dumps(options, sort_keys=True)


def inference_url(port: int, name: str, protocol: str, kind: str = "predictive") -> str:
    """The URL a client posts predictions to (an LLM endpoint's: the OpenAI API's base URL)."""
    if kind == "llm":
        return f"http://127.0.0.1:{port}/openai/v1"
    if protocol == "v1":
        return f"http://127.0.0.1:{port}/v1/models/{name}:predict"
    return f"http://127.0.0.1:{port}/v2/models/{name}/infer"


class LocalDeployer:
    """Endpoints under one local root (records in ``runs.db``, logs under ``endpoints/``)."""

    def __init__(self, root: LocalRoot) -> None:
        self.root = root.ensure()  # private (0700/0600), this process's umask 077
        self.store = EndpointStore(root.runs_db)

    # -- deploying ---------------------------------------------------------------------

    def deploy(self, spec: DeploySpec, *, issue_token: bool = True) -> DeployResult:
        """Deploy ``spec`` as a new revision (the first one takes all traffic, later ones are canaries).

        With ``auth="token"`` and no token yet, one is made and returned once
        (stored hashed) -- unless ``issue_token`` is False: then the endpoint
        refuses every prediction until ``rotate_token`` makes one. A deploy step
        inside a run passes False: all it prints goes to its log, a file.
        """
        from workbench_dsl.backends.deployer.requestlog import LogSettings, write_settings

        problem = check_endpoint_name(spec.endpoint)
        logging = LogSettings(spec.log_requests, spec.request_log_sample, spec.request_log_max_mb)
        problem = problem or logging.check() or _scaling_problem(spec)
        if problem:
            raise DeployError(problem)
        options = _llm_options(spec)
        name = spec.endpoint
        scaling = Scaling(spec.min_replicas, spec.scale_to_zero_after, spec.cost_per_hour)
        with self._locked(name):
            # Read by the server when it starts or its routing changes (below, either way).
            write_settings(self.root.endpoints / name, logging)
            token = None
            with self.store.transaction() as conn:
                row = self.store.get(name, conn)
                if row is None:
                    row = self.store.create(
                        conn,
                        name=name,
                        port=free_port(self.store.used_ports(conn)),
                        protocol=spec.protocol,
                        auth=spec.auth,
                    )
                elif (row.protocol, row.auth) != (spec.protocol, spec.auth):
                    self.store.update(name, conn, protocol=spec.protocol, auth=spec.auth)
                # A new idle time reaches a running activator with the next routing change.
                self.store.set_scaling(name, scaling, conn)
                if spec.auth == "token" and not row.token_hash and issue_token:
                    token = secrets.token_urlsafe(32)
                    self.store.update(name, conn, token_hash=token_hash(token))
                row = self.store.get(name, conn)
                assert row is not None
                needs_token = row.auth == "token" and not row.token_hash
                current = self._newest_serving(row, conn)
                if (
                    current is not None
                    and current.model_uri == spec.model_uri
                    and current.predictor_source == spec.predictor_source
                    and (current.kind, current.options) == (spec.kind, options)
                ):
                    revision = None
                else:
                    revision = self.store.add_revision(
                        conn,
                        endpoint=name,
                        model_uri=spec.model_uri,
                        storage=spec.storage,
                        flavor=spec.flavor,
                        predictor_source=spec.predictor_source,
                        predictor_name=spec.predictor_name,
                        run_id=spec.run_id,
                        kind=spec.kind,
                        options=options,
                    ).revision
            url = inference_url(row.port, name, spec.protocol, spec.kind)
            if revision is None:
                # The same model already serves here: nothing to roll out.
                assert current is not None
                row = self._ensure_running(row)
                # The running server re-reads its auth and request-log settings.
                self._apply(row, row.stable, row.canary, row.canary_percent)
                return DeployResult(
                    url,
                    current.revision,
                    token,
                    unchanged=True,
                    canary=current.revision == row.canary,
                    needs_token=needs_token,
                )

            has_stable = row.stable is not None
            stable: str | None
            canary: str | None
            if not has_stable or spec.canary_percent >= 100:
                stable, canary, percent = revision, None, 0
            else:
                stable, canary, percent = row.stable, revision, spec.canary_percent
            try:
                row = self._ensure_running(row)
                self._apply(row, stable, canary, percent)
            except DeployError as e:
                self.store.set_revision_state(name, revision, "failed", str(e))
                if not has_stable:
                    self._stop_process(row)
                raise
            with self.store.transaction() as conn:
                replaced = {row.stable, row.canary} - {stable, canary, None}
                self.store.update(name, conn, stable=stable, canary=canary, canary_percent=percent)
            for old in replaced:
                if old:
                    self.store.set_revision_state(name, old, "retired")
            self.store.set_revision_state(name, revision, "serving")
            return DeployResult(
                url, revision, token, canary=canary == revision, needs_token=needs_token
            )

    def promote(self, name: str) -> EndpointInfo:
        """Send all traffic to the canary; it becomes the stable revision."""
        with self._locked(name):
            row = self._get(name)
            if row.canary is None:
                raise DeployError(f"endpoint {name} has no canary to promote")
            self._apply_if_running(row, row.canary, None, 0)
            self.store.update(name, stable=row.canary, canary=None, canary_percent=0)
            if row.stable:
                self.store.set_revision_state(name, row.stable, "retired")
        return self.get(name)

    def rollback(self, name: str) -> EndpointInfo:
        """Drop the canary: all traffic back to the stable revision."""
        with self._locked(name):
            row = self._get(name)
            if row.canary is None:
                raise DeployError(
                    f"endpoint {name} has no canary to roll back (it serves {row.stable} only); "
                    f"deploy the earlier model version to go back further"
                )
            self._apply_if_running(row, row.stable, None, 0)
            self.store.update(name, canary=None, canary_percent=0)
            self.store.set_revision_state(name, row.canary, "rolled-back")
        return self.get(name)

    def rotate_token(self, name: str) -> str:
        """A new bearer token for ``name`` (shown once, stored hashed); the old one stops working."""
        with self._locked(name):
            row = self._get(name)
            token = secrets.token_urlsafe(32)
            self.store.update(name, auth="token", token_hash=token_hash(token))
            row = self._get(name)
            self._apply_if_running(row, row.stable, row.canary, row.canary_percent)
        return token

    # -- processes ------------------------------------------------------------------

    def stop(self, name: str) -> EndpointInfo:
        """Stop the endpoint's server and free its port (the record stays for ``up``)."""
        with self._locked(name):
            row = self._get(name)
            self._stop_process(row)
        return self.get(name)

    def up(self, names: list[str] | None = None) -> list[EndpointInfo]:
        """Start the servers of the recorded endpoints (or of ``names``) that are not running."""
        rows = [self._get(n) for n in names] if names else self.store.all()
        out = []
        for row in rows:
            if row.stable is None:
                continue
            with self._locked(row.name):
                self._ensure_running(self._get(row.name))
            out.append(self.get(row.name))
        return out

    def stop_all(self) -> None:
        for row in self.store.all():
            self.stop(row.name)

    # -- reading ---------------------------------------------------------------------

    def get(self, name: str) -> EndpointInfo:
        row = self._get(name)
        serving = self.store.revision(name, row.stable) if row.stable else None
        kind = serving.kind if serving is not None else "predictive"
        scaling = self.store.scaling(name)
        status = healthy_status(row, scaling)
        state = health(row, status)
        scale = ScaleInfo(
            min_replicas=scaling.min_replicas,
            scale_to_zero_after=scaling.scale_to_zero_after,
            state=state,
            cost_per_hour=scaling.cost_per_hour,
            idle_ratio=status.get("idle_ratio") if status else None,
            idle_window_s=status.get("idle_window_s") if status else None,
            **self.store.cold_start_summary(name),
        )
        return EndpointInfo(
            name=row.name,
            url=inference_url(row.port, row.name, row.protocol, kind),
            protocol=row.protocol,
            state=state,
            stable=row.stable,
            canary=row.canary,
            canary_percent=row.canary_percent if row.canary else 0,
            auth=row.auth,
            revisions=[r.to_json() for r in self.store.revisions(name)],
            scale=scale,
        )

    def list(self) -> list[EndpointInfo]:
        return [self.get(r.name) for r in self.store.all()]

    def predict(
        self, name: str, body: Any, token: str | None = None
    ) -> tuple[int, Any, str | None]:
        """POST ``body`` to the endpoint; returns (status, JSON reply, revision that served it)."""
        row = self._get(name)
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        # A scaled-to-zero endpoint answers after its cold start (bounded by its own timeout).
        status, reply, reply_headers = http(
            "POST",
            inference_url(row.port, name, row.protocol),
            body,
            headers,
            timeout=60 + START_TIMEOUT_S,
        )
        return status, reply, reply_headers.get("x-workbench-revision")

    def log_path(self, name: str) -> Path:
        return self.root.endpoints / name / "server.log"

    # -- internals -----------------------------------------------------------------

    def _get(self, name: str) -> EndpointRow:
        row = self.store.get(name)
        if row is None:
            known = ", ".join(r.name for r in self.store.all()) or "none"
            raise EndpointNotFound(f"no endpoint named {name!r} (known: {known})")
        return row

    def _newest_serving(self, row: EndpointRow, conn: Any) -> Any:
        newest = row.canary or row.stable
        if newest is None:
            return None
        return self.store.revision(row.name, newest, conn)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        d = self.root.endpoints / name
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _admin(self, name: str) -> str:
        return (self.root.endpoints / name / "admin.token").read_text(encoding="utf-8").strip()

    def _healthy(self, row: EndpointRow) -> bool:
        return healthy_status(row, self.store.scaling(row.name)) is not None

    @staticmethod
    def _ours(pid: int, name: str) -> bool:
        return ours(pid, name)

    def _ensure_running(self, row: EndpointRow) -> EndpointRow:
        if self._healthy(row):
            return row
        if row.pid and alive(row.pid):
            self._stop_process(row)
        port = row.port
        if not port_free(port):
            # Something else took the recorded port while the endpoint was down.
            with self.store.transaction() as conn:
                port = free_port(self.store.used_ports(conn) | {row.port})
                self.store.update(row.name, conn, port=port)
        proc = spawn_server(self.root, row.name)
        self.store.update(row.name, pid=proc.pid, state="running")
        row = self._get(row.name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.store.update(row.name, pid=None, state="stopped")
                raise DeployError(self._startup_error(row.name, proc.returncode))
            if self._healthy(row):
                return row
            time.sleep(0.1)
        self._stop_process(row)
        raise DeployError(
            f"the server of endpoint {row.name} did not start within {START_TIMEOUT_S:g}s "
            f"(log: {self.log_path(row.name)})"
        )

    def _startup_error(self, name: str, code: int | None) -> str:
        err = self.root.endpoints / name / "startup.error"
        if err.exists():
            return f"endpoint {name}: the model failed to load: {err.read_text(encoding='utf-8')}"
        last = tail(self.log_path(name))
        return f"the server of endpoint {name} exited with code {code}: {last}"

    def _apply(
        self, row: EndpointRow, stable: str | None, canary: str | None, percent: int
    ) -> None:
        body = {"stable": stable, "canary": canary, "canary_percent": percent}
        try:
            status, reply, _ = http(
                "POST",
                f"http://127.0.0.1:{row.port}/_workbench/routing",
                body,
                {"content-type": "application/json", ADMIN_HEADER: self._admin(row.name)},
                timeout=600,
            )
        except OSError as e:
            raise DeployError(f"endpoint {row.name}: the server did not answer ({e})") from None
        if status != 200:
            detail = reply.get("error") if isinstance(reply, dict) else reply
            failed = canary or stable
            raise DeployError(
                f"endpoint {row.name}: revision {failed} failed to load: {detail}; "
                f"the previous revision keeps serving"
                if row.stable and row.stable != failed
                else f"endpoint {row.name}: revision {failed} failed to load: {detail}"
            )

    def _apply_if_running(
        self, row: EndpointRow, stable: str | None, canary: str | None, percent: int
    ) -> None:
        if self._healthy(row):
            self._apply(row, stable, canary, percent)

    def _stop_process(self, row: EndpointRow) -> None:
        pid = row.pid
        # Never signal a pid that was reused by some other program.
        if pid and self._ours(pid, row.name):
            try:  # a stopped (SIGSTOP) server acts on SIGTERM only once continued
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
            terminate(pid)
        self.store.update(row.name, pid=None, state="stopped")


def _scaling_problem(spec: DeploySpec) -> str | None:
    after = spec.scale_to_zero_after
    if spec.min_replicas == 0 and (
        isinstance(after, bool) or not isinstance(after, int) or after < 1
    ):
        return (
            f"endpoint {spec.endpoint}: scale_to_zero_after must be a whole number of seconds, "
            f"1 or more (got {after!r})"
        )
    return None
