"""OpenLineage for local runs: a :class:`~workbench_dsl.engine.events.RunObserver` that hands
the engine's lifecycle events to the lineage backend.

The scheduler registers it like any observer (``Observers([..., lineage_observer()])``).
Every call only captures the time and queues the work, so it adds microseconds to the
scheduler's thread; building events, inspecting datasets and writing or sending them
happen on the backend's own threads, and ``on_run_end`` waits a bounded time for them.
A failure inside lineage is logged and never reaches the run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from workbench_dsl.backends.lineage import LineageRecorder, load_settings
from workbench_dsl.engine.events import BaseObserver, RunInfo, TaskInfo
from workbench_dsl.paths import LocalRoot, local_root

log = logging.getLogger(__name__)

#: Set by ``workbench scheduler`` on the runs it starts: the tick's time (ISO 8601, UTC),
#: carried as the pipeline run's ``nominalTime`` facet.
NOMINAL_TIME_ENV = "WORKBENCH_NOMINAL_TIME"
#: The pipeline module a run was compiled from, when known (``sourceCodeLocation``).
SOURCE_ENV = "WORKBENCH_PIPELINE_SOURCE"

# Task kinds that are work of their own (DAG, loop and iteration tasks only group others).
_WORK = ("container", "importer")


class LineageObserver(BaseObserver):
    """Emits OpenLineage events for a run and its tasks.

    Args:
        recorder: The recorder to use (default: one configured from the environment,
            built on the first run).
        flush_timeout: Seconds ``on_run_end`` waits for the local events file.
        remote_timeout: Seconds ``on_run_end`` waits for a remote backend.
    """

    def __init__(
        self,
        recorder: LineageRecorder | None = None,
        *,
        flush_timeout: float = 10.0,
        remote_timeout: float = 2.0,
    ) -> None:
        self._recorder = recorder
        self._flush_timeout = flush_timeout
        self._remote_timeout = remote_timeout
        self._run_dirs: dict[str, str] = {}

    def _rec(self, root: str | None = None) -> LineageRecorder:
        if self._recorder is None:
            lr = LocalRoot(Path(root)) if root else local_root()
            self._recorder = LineageRecorder(load_settings(lr))
        return self._recorder

    def on_run_start(self, run: RunInfo) -> None:
        rec = self._rec(run.root)
        if not rec.enabled:
            return
        lr = LocalRoot(Path(run.root)) if run.root else local_root()
        self._run_dirs[run.run_id] = str(lr.runs / run.run_id)
        rec.run_started(
            run.run_id,
            run.pipeline,
            run.parameters,
            nominal_time=os.environ.get(NOMINAL_TIME_ENV) or None,
            source_path=_source_file(getattr(run, "origin", None)) or os.environ.get(SOURCE_ENV),
            resumed=run.resumed,
        )

    def on_task_start(self, task: TaskInfo) -> None:
        if task.cached:
            # A cache hit ends at once (the engine calls on_task_end next, on this thread):
            # its START is built there, with its COMPLETE, as one unit of work.
            return
        rec = self._rec()
        if not rec.enabled or task.kind not in _WORK:
            return
        rec.task_started(task.run_id, task.task, inputs=task.inputs, source=task.source)

    def on_task_end(self, task: TaskInfo) -> None:
        rec = self._rec()
        if not rec.enabled or task.kind not in _WORK or task.status == "RUNNING":
            return
        if task.reused:
            # Finished in an earlier process of this run, whose events are already out:
            # only remember the names its outputs were given.
            rec.remember_outputs(task.run_id, task.task, task.outputs, kind=task.kind)
            return
        rec.task_finished(
            task.run_id,
            task.task,
            status=task.status,
            inputs=task.inputs,
            outputs=task.outputs,
            source=task.source,
            cached=task.cached,
            attempt=task.attempt,
            error=task.error,
            duration_s=task.duration_s,
            cost=task.cost,
            # A cache hit did not run here, so it left no notes (and looking costs a file
            # system call per task in a rerun of thousands).
            notes_dir=None if task.cached else self._run_dirs.get(task.run_id),
            kind=task.kind,
        )

    def on_run_end(self, run: RunInfo) -> None:
        rec = self._rec()
        if not rec.enabled:
            return
        rec.run_finished(run.run_id, run.status, error=run.error)
        self._run_dirs.pop(run.run_id, None)
        rec.flush(self._flush_timeout, self._remote_timeout)


def _source_file(origin: str | None) -> str | None:
    """The ``.py`` file of a ``file.py[:name]`` origin, if that is what was run."""
    if not origin:
        return None
    path = origin.rsplit(":", 1)[0] if origin.count(":") and not origin.endswith(".py") else origin
    return path if path.endswith(".py") and os.path.isfile(path) else None


def lineage_observer(**kwargs: Any) -> LineageObserver:
    """The observer the scheduler adds to every run (see ``docs/lineage.md``)."""
    return LineageObserver(**kwargs)
