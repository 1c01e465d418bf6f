"""Lineage: OpenLineage events for every run and task, and the graph read back from them.

* :class:`LineageRecorder` turns run/task lifecycle calls into OpenLineage RunEvents
  (the engine's :mod:`~workbench_dsl.engine.lineage_observer` drives it);
* :mod:`.config` decides where they go (the local ``lineage/events.jsonl`` and, when
  configured the OpenLineage way, an HTTP backend such as Marquez);
* :mod:`.notes` lets a step report what it registered, deployed or found;
* :mod:`.graph` and :mod:`.report` answer ``workbench lineage TARGET``.

Nothing here imports the ``openlineage`` package until a remote backend is used.
See ``docs/lineage.md``.
"""

from __future__ import annotations

from workbench_dsl.backends.lineage.config import LineageSettings, load_settings
from workbench_dsl.backends.lineage.events import LineageRecorder
from workbench_dsl.backends.lineage.notes import note_endpoint, note_model_version, note_sweep

__all__ = [
    "LineageRecorder",
    "LineageSettings",
    "load_settings",
    "note_endpoint",
    "note_model_version",
    "note_sweep",
]
