"""Whether a local endpoint's server is there and answers for it: its state as users see it.

``running`` only when the endpoint's own server (its recorded pid) answers
``/_workbench/status`` and KServe says its model is ready; for ``min_replicas=0``
the server is the activator, which answers for a sleeping model (``scaled to
zero``, ``starting``). A server of the other kind than the record asks for is not
healthy: a deploy replaces it.
"""

from __future__ import annotations

from typing import Any

from workbench_dsl.backends.deployer._process import alive, http, is_child, is_server
from workbench_dsl.backends.deployer._store import EndpointRow, Scaling


def server_status(row: EndpointRow) -> dict[str, Any] | None:
    """What the server on the endpoint's port says of itself, when it is this endpoint's."""
    try:
        status, reply, _ = http(
            "GET", f"http://127.0.0.1:{row.port}/_workbench/status", None, {}, timeout=2
        )
    except OSError:
        return None
    if status != 200 or not isinstance(reply, dict) or reply.get("endpoint") != row.name:
        return None
    return reply


def healthy_status(row: EndpointRow, scaling: Scaling) -> dict[str, Any] | None:
    """The server's status when it is the endpoint's own, of the kind the record asks for
    (an activator for ``min_replicas=0``), and its model (if it has one yet) is ready."""
    status = server_status(row)
    if status is None or (row.pid is not None and status.get("pid") != row.pid):
        return None
    if (status.get("mode") == "scale-to-zero") != scaling.scales_to_zero:
        return None  # the other kind of server: a deploy replaces it
    if scaling.scales_to_zero or row.stable is None:
        # The activator answers for a sleeping model; a first deployment's server
        # loads its model once started.
        return status
    try:
        code, _, _ = http(
            "GET",
            f"http://127.0.0.1:{row.port}/v2/models/{row.name}/ready",
            None,
            {},
            timeout=2,
        )
    except OSError:
        return None
    return status if code == 200 else None


def health(row: EndpointRow, status: dict[str, Any] | None = None) -> str:
    """``running``, ``scaled to zero`` / ``starting`` (min_replicas=0), ``not answering``
    (its process is there, the model does not answer) or ``stopped``."""
    if status is not None:
        return str(status.get("scale") or "running")
    if row.pid and ours(row.pid, row.name):
        return "not answering"
    return "stopped"


def ours(pid: int, name: str) -> bool:
    """Whether ``pid`` is this endpoint's server (never a pid reused by another program)."""
    return is_child(pid) or (alive(pid) and is_server(pid, name))
