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
    check_endpoint_name,
    token_hash,
)
from workbench_dsl.backends.deployer._process import (
    alive,
    free_port,
    http,
    is_child,
    is_server,
    port_free,
    spawn_server,
    tail,
    terminate,
)
from workbench_dsl.backends.deployer._store import EndpointRow, EndpointStore
from workbench_dsl.paths import LocalRoot

ADMIN_HEADER = "x-workbench-admin"
START_TIMEOUT_S = 90.0


class EndpointNotFound(DeployError):
    pass


def inference_url(port: int, name: str, protocol: str) -> str:
    """The URL a client posts predictions to."""
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
        problem = problem or logging.check()
        if problem:
            raise DeployError(problem)
        name = spec.endpoint
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
                    ).revision
            url = inference_url(row.port, name, spec.protocol)
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
        return EndpointInfo(
            name=row.name,
            url=inference_url(row.port, row.name, row.protocol),
            protocol=row.protocol,
            state=self._health(row),
            stable=row.stable,
            canary=row.canary,
            canary_percent=row.canary_percent if row.canary else 0,
            auth=row.auth,
            revisions=[r.to_json() for r in self.store.revisions(name)],
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
        status, reply, reply_headers = http(
            "POST", inference_url(row.port, name, row.protocol), body, headers, timeout=60
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

    def _status(self, row: EndpointRow) -> dict[str, Any] | None:
        try:
            status, reply, _ = http(
                "GET", f"http://127.0.0.1:{row.port}/_workbench/status", None, {}, timeout=2
            )
        except OSError:
            return None
        if status != 200 or not isinstance(reply, dict) or reply.get("endpoint") != row.name:
            return None
        return reply

    def _healthy(self, row: EndpointRow) -> bool:
        """Whether the endpoint's own server answers and its model (if it has one yet) is ready."""
        status = self._status(row)
        if status is None or (row.pid is not None and status.get("pid") != row.pid):
            return False
        if row.stable is None:  # a first deployment: the server loads it once started
            return True
        try:
            code, _, _ = http(
                "GET",
                f"http://127.0.0.1:{row.port}/v2/models/{row.name}/ready",
                None,
                {},
                timeout=2,
            )
        except OSError:
            return False
        return code == 200

    def _health(self, row: EndpointRow) -> str:
        """``running``, ``not answering`` (its process is there, the model does not answer) or ``stopped``."""
        if self._healthy(row):
            return "running"
        if row.pid and self._ours(row.pid, row.name):
            return "not answering"
        return "stopped"

    @staticmethod
    def _ours(pid: int, name: str) -> bool:
        """Whether ``pid`` is this endpoint's server (never a pid reused by another program)."""
        return is_child(pid) or (alive(pid) and is_server(pid, name))

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
