"""Where lineage events go: the local events file, plus a backend configured the OpenLineage way.

Every local run appends its events to ``<local root>/lineage/events.jsonl`` (OpenLineage's
own file transport format: one JSON event per line); that file is what ``workbench
lineage`` reads. A remote backend (Marquez, or anything that speaks OpenLineage) is
*added* when OpenLineage's usual configuration names one, in OpenLineage's order
(https://openlineage.io/docs/client/python#configuration):

* ``OPENLINEAGE_DISABLED=true``: no events at all, not even the local file;
* ``OPENLINEAGE_CONFIG`` (a path), ``./openlineage.yml``, ``~/.openlineage/openlineage.yml``;
* ``OPENLINEAGE__TRANSPORT__...`` variables, ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_ENDPOINT``,
  ``OPENLINEAGE_API_KEY``);
* ``[lineage]`` in ``workbench.toml``: ``url = "http://marquez:5000"`` (HTTP transport),
  ``transport = "none"`` (off) and ``namespace``.

The check is cheap and imports nothing from ``openlineage``: the client (about 0.4 s to
import) is only loaded, on a background thread, when a remote backend is configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench_dsl.paths import LocalRoot, local_root

#: The default OpenLineage namespace of this project's jobs and datasets.
DEFAULT_NAMESPACE = "workbench"


@dataclass(frozen=True)
class LineageSettings:
    """Resolved lineage settings for this process.

    Attributes:
        enabled: False when OpenLineage is disabled (nothing is written or sent).
        namespace: OpenLineage namespace of jobs and datasets.
        events_file: The local JSON-lines file every event is appended to (None on a
            cluster, where there is no local root to keep).
        remote: Where else events go: ``{"config": {...}}`` for an ``OpenLineageClient``
            built from an explicit config dict, ``{"openlineage": True}`` to let the client
            resolve its own configuration (files and env), or None.
        remote_label: A short description of the remote backend for messages.
    """

    enabled: bool
    namespace: str
    events_file: Path | None
    remote: dict[str, Any] | None = None
    remote_label: str = ""


def _openlineage_yml() -> Path | None:
    candidates = [os.environ.get("OPENLINEAGE_CONFIG")]
    candidates.append(os.path.join(os.getcwd(), "openlineage.yml"))
    candidates.append(os.path.join(os.path.expanduser("~/.openlineage"), "openlineage.yml"))
    for c in candidates:
        if c and os.path.isfile(c):
            return Path(c)
    return None


def _env_configured() -> str | None:
    if os.environ.get("OPENLINEAGE_URL"):
        return os.environ["OPENLINEAGE_URL"]
    if any(k.startswith("OPENLINEAGE__TRANSPORT") for k in os.environ):
        return os.environ.get("OPENLINEAGE__TRANSPORT__URL") or (
            os.environ.get("OPENLINEAGE__TRANSPORT__TYPE", "OPENLINEAGE__TRANSPORT") + " transport"
        )
    return None


def _toml_section() -> dict[str, Any]:
    try:
        from workbench_dsl.config import load_config

        return dict(load_config().sections.get("lineage", {}))
    except Exception:
        # A broken workbench.toml is reported by the command that needs it; lineage
        # must never be the reason a run fails.
        return {}


def load_settings(root: LocalRoot | None = None, *, local: bool = True) -> LineageSettings:
    """Resolve where events go for this process.

    Args:
        root: The local root (default: :func:`workbench_dsl.paths.local_root`).
        local: Keep the local events file (False on a cluster).
    """
    toml = _toml_section()
    namespace = (
        os.environ.get("OPENLINEAGE_NAMESPACE") or toml.get("namespace") or DEFAULT_NAMESPACE
    )
    disabled = os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true"
    transport = str(toml.get("transport", "")).strip().lower()
    if disabled or transport in ("none", "off", "disabled", "noop"):
        return LineageSettings(enabled=False, namespace=namespace, events_file=None)
    events_file = (root or local_root()).lineage_events if local else None

    remote: dict[str, Any] | None = None
    label = ""
    yml = _openlineage_yml()
    env = _env_configured()
    if yml is not None or env is not None:
        # OpenLineage's own files and variables win: the client resolves them itself.
        remote = {"openlineage": True}
        label = env or str(yml)
    elif toml.get("url"):
        url = str(toml["url"])
        remote = {"config": {"transport": {"type": "http", "url": url}}}
        label = url
    elif transport == "console":
        remote = {"config": {"transport": {"type": "console"}}}
        label = "console"
    return LineageSettings(
        enabled=True,
        namespace=str(namespace),
        events_file=events_file,
        remote=remote,
        remote_label=label,
    )
