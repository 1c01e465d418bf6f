"""Talking to a Kubeflow Pipelines API server through ``kfp.Client``, with one-line errors.

Shared by ``workbench submit`` and ``workbench schedule --target kfp``. The options are
``kfp.Client``'s own (``--token`` is its ``existing_token``, ``--cookies``,
``--namespace``, ``--ssl-ca-cert``, ``--proxy``, ``--client-id``, ...). Errors become one
line: the host cannot be reached, it refused the credentials, it is not a KFP API.
Requests time out (``socket`` default, 30 s) instead of hanging on a silent host, and
the SDK's chatter ("Experiment details: ...") goes to stderr so ``--json`` stays clean.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workbench_dsl.errors import JobFailed, UsageError, WorkbenchError


@dataclass(frozen=True)
class KfpConnection:
    """Where the KFP API is and how to authenticate (``kfp.Client``'s arguments)."""

    host: str
    namespace: str | None = None
    token: str | None = None
    cookies: str | None = None
    ssl_ca_cert: str | None = None
    proxy: str | None = None
    client_id: str | None = None
    other_client_id: str | None = None
    other_client_secret: str | None = None
    verify_ssl: bool | None = None
    timeout: float = 30.0
    #: The KFP version the user says the server runs (``--kfp-version``), for servers
    #: whose healthz reports none (``tag_name: unknown`` on custom builds).
    kfp_version: str | None = None


def connect(conn: KfpConnection) -> Any:
    """A ``kfp.Client`` for ``conn`` (errors as :class:`WorkbenchError`)."""
    if not conn.host:
        raise UsageError("--host is required: the KFP API URL, e.g. http://localhost:8080")
    with kfp_errors(conn):
        import kfp

        class _Client(kfp.Client):  # type: ignore[misc]
            # kfp.Client asks /healthz at start and retries 5 times, 5 s apart, on any API
            # error; ask once, so a wrong host fails in a second, not in 25.
            def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
                return self._healthz_api.healthz_service_get_healthz()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _Client(
                host=conn.host,
                namespace=conn.namespace or "kubeflow",
                existing_token=conn.token,
                cookies=conn.cookies,
                ssl_ca_cert=conn.ssl_ca_cert,
                proxy=conn.proxy,
                client_id=conn.client_id,
                other_client_id=conn.other_client_id,
                other_client_secret=conn.other_client_secret,
                verify_ssl=conn.verify_ssl,
            )


@contextlib.contextmanager
def kfp_errors(conn: KfpConnection) -> Iterator[None]:
    """Run KFP client calls with a socket timeout, stdout kept clean, errors in one line."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(conn.timeout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except WorkbenchError:
        raise
    except Exception as e:
        raise _one_line(e, conn.host) from None
    finally:
        socket.setdefaulttimeout(old)


def _one_line(e: Exception, host: str) -> WorkbenchError:
    import urllib3

    if isinstance(e, urllib3.exceptions.MaxRetryError):
        reason = e.reason
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            why = str(reason).rsplit(":", 1)[-1].strip() or "connection failed"
            return JobFailed(f"cannot reach the KFP API at {host}: {why}")
        return JobFailed(f"cannot reach the KFP API at {host}: {reason}")
    if isinstance(e, (urllib3.exceptions.HTTPError, OSError)):
        return JobFailed(f"cannot reach the KFP API at {host}: {e}")
    status = getattr(e, "status", None)
    if status is not None and type(e).__name__ == "ApiException":
        message = _api_message(getattr(e, "body", None)) or getattr(e, "reason", "") or ""
        if status in (401, 403):
            return UsageError(
                f"the KFP API at {host} refused the request ({status} {message}); "
                f"pass --token, --cookies or --namespace as your deployment needs"
            )
        if status == 404:
            return UsageError(
                f"the KFP API at {host} answered 404 ({message or 'not found'}): is --host the "
                f"KFP API (the URL the KFP UI is served from, e.g. http://localhost:8080)?"
            )
        if status == 0:
            return JobFailed(f"cannot reach the KFP API at {host}: {message}")
        return JobFailed(f"the KFP API at {host} answered {status}: {message}")
    if isinstance(e, (ValueError, TimeoutError)):
        return JobFailed(f"KFP at {host}: {e}")
    return JobFailed(f"KFP at {host}: {type(e).__name__}: {e}")


def _api_message(body: Any) -> str | None:
    if not body:
        return None
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:200]
    if isinstance(data, dict):
        msg = data.get("message") or data.get("error")
        return str(msg)[:300] if msg else None
    return None


@dataclass(frozen=True)
class ServerInfo:
    """What the API server says about itself: its release tag and its clock."""

    version: tuple[int, int, int] | None  # None: the server did not say (custom build)
    tag: str  # as reported ("2.17.0", "unknown") or as given by --kfp-version
    given: bool  # True when the version came from --kfp-version, not the server
    now: datetime | None  # the server's clock (HTTP Date header), when it sent one


def parse_version(tag: str | None) -> tuple[int, int, int] | None:
    """``(2, 16, 0)`` from ``2.16.0``, ``v2.16``, ``2.16.0-rc.1``; None if it is not one."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", (tag or "").strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def server_info(client: Any, conn: KfpConnection) -> ServerInfo:
    """Ask ``/apis/v2beta1/healthz`` for the server's ``tag_name`` and clock.

    The SDK's ``V2beta1GetHealthzResponse`` model drops ``tag_name`` (the API server adds
    it outside the proto, backend/src/apiserver/main.go), so the body is read raw.
    """
    from email.utils import parsedate_to_datetime

    try:
        with kfp_errors(conn):
            resp = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
    except WorkbenchError:
        # Some gateways do not pass healthz through: the version is then unknown, which
        # every caller reads the safe way (as before 2.16) unless --kfp-version says more.
        given = parse_version(conn.kfp_version) if conn.kfp_version else None
        return ServerInfo(given, conn.kfp_version or "unknown", given is not None, None)
    try:
        body = json.loads(resp.data or b"{}")
    except ValueError:
        body = {}
    tag = str(body.get("tag_name") or "unknown") if isinstance(body, dict) else "unknown"
    now = None
    date = resp.headers.get("Date") if resp.headers is not None else None
    if date:
        with contextlib.suppress(TypeError, ValueError):
            now = parsedate_to_datetime(date).astimezone(UTC)
    if conn.kfp_version:
        return ServerInfo(parse_version(conn.kfp_version), conn.kfp_version, True, now)
    return ServerInfo(parse_version(tag), tag, False, now)


def to_dict(obj: Any) -> dict[str, Any]:
    """A kfp_server_api model as a JSON-ready dict."""
    if obj is None:
        return {}
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return json.loads(json.dumps(data, default=str))
