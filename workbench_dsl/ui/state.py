"""What the dashboard holds while it runs: the local root's stores (one SQLite connection per
thread), the registry, the lineage graph (re-read when its file changes), endpoint metrics
and the one-line messages an action leaves for the next page."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any

from workbench_dsl.paths import LocalRoot
from workbench_dsl.ui.metrics import EndpointMetrics


class UiState:
    """Shared by every request of one ``workbench ui`` server."""

    def __init__(self, root: LocalRoot, *, tracking_uri: str | None = None) -> None:
        self.root = root
        self.tracking_uri = tracking_uri
        self.metrics = EndpointMetrics()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._registry: Any = None
        self._deployer: Any = None
        self._lineage: tuple[tuple[float, int], Any] | None = None
        self._flashes: OrderedDict[str, tuple[str, str]] = OrderedDict()

    # -- stores -----------------------------------------------------------------------------

    def runs(self) -> Any:
        """This thread's :class:`~workbench_dsl.engine.store.RunStore`."""
        store = getattr(self._local, "runs", None)
        if store is None:
            from workbench_dsl.engine.store import RunStore

            self.root.ensure()
            store = self._local.runs = RunStore(self.root.runs_db)
        return store

    def schedules(self) -> Any:
        """This thread's :class:`~workbench_dsl.schedule.store.ScheduleStore`."""
        store = getattr(self._local, "schedules", None)
        if store is None:
            from workbench_dsl.schedule.store import ScheduleStore

            self.root.ensure()
            store = self._local.schedules = ScheduleStore(self.root.runs_db)
        return store

    def deployer(self) -> Any:
        """The local deployer (it opens a connection per call: one is shared)."""
        with self._lock:
            if self._deployer is None:
                from workbench_dsl.backends.deployer import local_deployer

                self._deployer = local_deployer(self.root)
            return self._deployer

    def registry_exists(self) -> bool:
        """False for a local registry that was never created (nothing registered yet)."""
        from workbench_dsl.config import load_config

        if self.tracking_uri or load_config().get("registry", "tracking_uri"):
            return True
        return self.root.mlflow_db.exists()

    def registry(self) -> Any:
        """The registry ``workbench models`` and ``workbench approve`` use (opened once)."""
        with self._lock:
            if self._registry is None:
                from workbench_dsl.backends.registry import open_configured_registry

                self._registry = open_configured_registry(self.tracking_uri, root=self.root)
            return self._registry

    def lineage(self) -> Any:
        """The lineage graph of ``lineage/events.jsonl``, read again only after it changed."""
        from workbench_dsl.backends.lineage.graph import LineageGraph

        path = self.root.lineage_events
        try:
            st = path.stat()
            stamp = (st.st_mtime, st.st_size)
        except OSError:
            stamp = (0.0, 0)
        with self._lock:
            if self._lineage is None or self._lineage[0] != stamp:
                self._lineage = (stamp, LineageGraph.load(path))
            return self._lineage[1]

    # -- messages after an action --------------------------------------------------------------

    def flash(self, message: str, kind: str = "ok") -> str:
        """Keep a message for the page an action redirects to; returns its key."""
        key = secrets.token_urlsafe(8)
        with self._lock:
            self._flashes[key] = (kind, message)
            while len(self._flashes) > 200:
                self._flashes.popitem(last=False)
        return key

    def take_flash(self, key: str | None) -> tuple[str, str] | None:
        if not key:
            return None
        with self._lock:
            return self._flashes.pop(key, None)

    def running_endpoints(self) -> list[tuple[str, int]]:
        """(name, port) of every endpoint recorded as running (for the metrics reader)."""
        return [(r.name, r.port) for r in self.deployer().store.all() if r.state == "running"]
