"""OpenLineage RunEvents for a pipeline run and its tasks.

A pipeline run is an OpenLineage run of the job ``<pipeline>``; each task is a run
of the job ``<pipeline>.<task>`` whose ``parent`` facet points at the pipeline run.
Run ids are UUIDs derived from the engine's run id (and task name), so the same
run always has the same ids. Artifacts are datasets named
``<pipeline>/<producing task>/<output>`` -- stable across runs -- whose ``version``
facet is the content digest, so every run's data is one version of the same
dataset. Registered model versions (``models:/NAME`` version N) and endpoints
(``endpoint:NAME``, version = revision) are datasets too, which makes the chain
endpoint <- model version <- training step <- dataset one graph.

The recorder's methods are called on the engine's thread: they capture the time
and hand everything else (naming, file inspection, JSON) to the emitter's thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.backends.lineage import facets as F
from workbench_dsl.backends.lineage import launchers, notes
from workbench_dsl.backends.lineage.config import LineageSettings, load_settings
from workbench_dsl.backends.lineage.emitter import Emitter, Event, Shared
from workbench_dsl.backends.lineage.inspect import inspect_path, short_json

#: Engine task/run statuses -> OpenLineage event types.
TERMINAL = {
    "SUCCEEDED": "COMPLETE",
    "FAILED": "FAIL",
    "CANCELLED": "ABORT",
    "TIMED_OUT": "FAIL",
    "SKIPPED": "ABORT",
    "NOT_RUN": "ABORT",
}


_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """Now in UTC to the millisecond: ``2026-12-02T22:10:36.811Z``.

    The same text as ``datetime.now(UTC).isoformat(timespec="milliseconds")`` with
    ``Z``; the date and time of the second are formatted once per second (this is
    called twice per task, on the engine's thread).
    """
    global _second
    t = time.time()
    s = int(t)
    us = round((t - s) * 1e6)
    if us >= 1_000_000:
        s, us = s + 1, 0
    if _second[0] != s:
        _second = (s, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)))
    return f"{_second[1]}.{us // 1000:03d}Z"


@dataclass
class _RunState:
    pipeline: str
    started: set[str] = field(default_factory=set)
    # artifact URI (and digest) -> the dataset name it was produced as in this run
    by_uri: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_digest: dict[str, tuple[str, str]] = field(default_factory=dict)
    source_path: str | None = None
    # Parts every task event of the run shares, built once (events are only read after).
    parent: Shared | None = None
    job_facets: dict[str | None, Shared] = field(default_factory=dict)


class LineageRecorder:
    """Turns run and task lifecycle calls into OpenLineage events and emits them.

    Args:
        settings: Where events go (default: :func:`load_settings`).
        emitter: The emitter to use (default: one built from ``settings``).
        name_by_uri: Name every artifact after its URI (a step reporting on a cluster).
    """

    def __init__(
        self,
        settings: LineageSettings | None = None,
        emitter: Emitter | None = None,
        *,
        name_by_uri: bool = False,
    ) -> None:
        self.settings = settings or load_settings()
        self.emitter = emitter or Emitter(self.settings)
        # On a cluster each pod reports only its own task, so a consumer cannot learn the
        # name its producer gave an artifact: both sides name it after its URI instead.
        self.name_by_uri = name_by_uri
        self.namespace = self.settings.namespace
        self._runs: dict[str, _RunState] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    # -- lifecycle (caller's thread: cheap) ---------------------------------------------

    def run_started(
        self,
        run_id: str,
        pipeline: str,
        parameters: dict[str, Any] | None = None,
        *,
        nominal_time: str | None = None,
        source_path: str | None = None,
        resumed: bool = False,
    ) -> None:
        """The pipeline run started (or was resumed)."""
        with self._lock:
            self._runs[run_id] = _RunState(pipeline=pipeline, source_path=source_path)
        when = now_iso()
        params = dict(parameters or {})

        def build() -> list[Event]:
            run_facets: dict[str, Any] = {
                "processing_engine": F.processing_engine(),
                "workbench_run": F.custom_facet(
                    "workbench_run", runId=run_id, pipeline=pipeline, resumed=resumed
                ),
            }
            if params:
                run_facets["executionParameters"] = F.execution_parameters(params)
            if nominal_time:
                run_facets["nominalTime"] = F.spec_facet(
                    "nominalTime", nominalStartTime=nominal_time
                )
            job_facets = {"jobType": F.job_type("PIPELINE")}
            loc = _source_location(source_path)
            if loc:
                job_facets["sourceCodeLocation"] = loc
            return [
                self._event("START", when, F.run_uuid(run_id), pipeline, run_facets, job_facets)
            ]

        self.emitter.submit(build)

    def attach(self, run_id: str, pipeline: str) -> None:
        """Know a pipeline run that another process reports (a step on a cluster)."""
        with self._lock:
            self._runs.setdefault(run_id, _RunState(pipeline=pipeline))

    def task_started(
        self,
        run_id: str,
        task: str,
        *,
        inputs: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        """A task's first attempt started."""
        with self._lock:
            state = self._state_locked(run_id)
            state.started.add(task)
        when = now_iso()
        inputs = inputs or {}
        self.emitter.submit(
            lambda: [self._task_event("START", when, run_id, state, task, inputs, {}, source)]
        )

    def task_finished(
        self,
        run_id: str,
        task: str,
        *,
        status: str,
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        source: str | None = None,
        cached: bool = False,
        attempt: int = 0,
        error: str | None = None,
        duration_s: float = 0.0,
        cost: float = 0.0,
        notes_dir: str | None = None,
        kind: str = "container",
    ) -> None:
        """A task ended (ran, came from the cache, failed, was cancelled or skipped)."""
        with self._lock:
            state = self._state_locked(run_id)
            was_started = task in state.started
            state.started.discard(task)
        event_type = TERMINAL.get(status, "COMPLETE" if status == "SUCCEEDED" else "FAIL")
        if not was_started and status in ("SKIPPED", "NOT_RUN"):
            return  # never started: nothing happened that lineage should show
        when = now_iso()
        inputs, outputs = inputs or {}, outputs or {}
        info = {
            "status": status,
            "cached": cached,
            "attempts": attempt,
            "durationS": round(duration_s, 3),
            "cost": round(cost, 6),
        }

        def build() -> list[Event]:
            found = notes.collect(notes_dir, task) if notes_dir else []
            events = []
            shared: dict[str, Any] = {}  # what both events read of the same inputs
            if not was_started:  # (a cache hit: its START and its end come together)
                events.append(
                    self._task_event(
                        "START", when, run_id, state, task, inputs, {}, source, shared=shared
                    )
                )
            events.append(
                self._task_event(
                    event_type,
                    when,
                    run_id,
                    state,
                    task,
                    inputs,
                    outputs,
                    source,
                    info=info,
                    error=error,
                    found=found,
                    external=kind == "importer" or self.name_by_uri,
                    shared=shared,
                )
            )
            return events

        self.emitter.submit(build)

    def remember_outputs(
        self, run_id: str, task: str, outputs: dict[str, Any], *, kind: str = "container"
    ) -> None:
        """Learn the dataset names of a task's outputs without emitting anything (a task
        completed before a resume: its events were sent by the first process)."""
        state = self._state(run_id)

        def build() -> list[Event]:
            for name, a in _artifacts(outputs):
                self._remember(
                    state, a, self._output_name(state.pipeline, task, name, a, kind == "importer")
                )
            return []

        self.emitter.submit(build)

    def run_finished(self, run_id: str, status: str, *, error: str | None = None) -> None:
        """The pipeline run ended."""
        state = self._state(run_id)
        when = now_iso()
        event_type = TERMINAL.get(status, "FAIL")

        def build() -> list[Event]:
            run_facets: dict[str, Any] = {
                "workbench_run": F.custom_facet(
                    "workbench_run", runId=run_id, pipeline=state.pipeline, status=status
                )
            }
            if error and event_type == "FAIL":
                run_facets["errorMessage"] = F.error_message(error)
            return [
                self._event(
                    event_type,
                    when,
                    F.run_uuid(run_id),
                    state.pipeline,
                    run_facets,
                    {"jobType": F.job_type("PIPELINE")},
                )
            ]

        self.emitter.submit(build)
        with self._lock:
            self._runs.pop(run_id, None)

    def flush(self, timeout: float = 5.0, remote_timeout: float = 2.0) -> bool:
        return self.emitter.flush(timeout, remote_timeout)

    # -- building (emitter's thread) ----------------------------------------------------

    def _state(self, run_id: str) -> _RunState:
        with self._lock:
            return self._state_locked(run_id)

    def _state_locked(self, run_id: str) -> _RunState:
        state = self._runs.get(run_id)
        if state is None:  # a task event without run_started: name it after the run id
            state = self._runs[run_id] = _RunState(pipeline=run_id)
        return state

    def _event(
        self,
        event_type: str,
        when: str,
        run_uuid: str,
        job_name: str,
        run_facets: dict[str, Any],
        job_facets: dict[str, Any] | Shared,
        inputs: list[Event] | None = None,
        outputs: list[Event] | None = None,
    ) -> Event:
        return {
            "eventType": event_type,
            "eventTime": when,
            "producer": F.PRODUCER,
            "schemaURL": F.RUN_EVENT_SCHEMA,
            "run": {"runId": run_uuid, "facets": run_facets},
            "job": {"namespace": self.namespace, "name": job_name, "facets": job_facets},
            "inputs": inputs or [],
            "outputs": outputs or [],
        }

    def _task_event(
        self,
        event_type: str,
        when: str,
        run_id: str,
        state: _RunState,
        task: str,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        source: str | None,
        *,
        info: dict[str, Any] | None = None,
        error: str | None = None,
        found: list[dict[str, Any]] | None = None,
        external: bool = False,
        shared: dict[str, Any] | None = None,
    ) -> Event:
        pipeline = state.pipeline
        launcher = launchers.parse(source) if source else None
        parent = state.parent
        if parent is None:
            parent = state.parent = Shared(F.parent_facet(self.namespace, pipeline, run_id))
        run_facets: dict[str, Any] = {"parent": parent}
        params = dict(inputs.get("parameters") or {})
        if params:
            facet = shared.get("executionParameters") if shared is not None else None
            if facet is None:
                facet = F.execution_parameters(params)
                if shared is not None:
                    shared["executionParameters"] = facet
            run_facets["executionParameters"] = facet
        job_facets = state.job_facets.get(source)
        if job_facets is None:
            job_facets = state.job_facets[source] = Shared(
                self._job_facets(state, source, launcher)
            )
        in_ds = [self._input_dataset(state, name, a) for name, a in _artifacts(inputs)]
        in_ds += launchers.input_datasets(self.namespace, params, launcher, found or [])
        out_ds: list[Event] = []
        if info is not None:
            # No ``launcher`` key without a launcher: nulls are dropped as the event is
            # written anyway, and an event without any is written without copying it.
            kind = {"launcher": launcher.kind} if launcher else {}
            run_facets["workbench_task"] = F.custom_facet(
                "workbench_task", runId=run_id, task=task, **kind, **info
            )
            if error and event_type == "FAIL":
                run_facets["errorMessage"] = F.error_message(error)
            if event_type == "COMPLETE":
                out_ds = [
                    self._output_dataset(state, pipeline, task, name, a, external)
                    for name, a in _artifacts(outputs)
                ]
                out_params = dict(outputs.get("parameters") or {})
                extra_ds, extra_facets = launchers.outputs(
                    self.namespace, params, out_params, launcher, found or [], when
                )
                out_ds += extra_ds
                run_facets.update(extra_facets)
        return self._event(
            event_type,
            when,
            F.run_uuid(run_id, task),
            f"{pipeline}.{task}",
            run_facets,
            job_facets,
            in_ds,
            out_ds,
        )

    def _job_facets(
        self, state: _RunState, source: str | None, launcher: launchers.Launcher | None
    ) -> dict[str, Any]:
        """A task job's facets: the same for every task of a run that runs ``source``."""
        job_facets: dict[str, Any] = {"jobType": F.job_type("TASK")}
        user_source = launcher.user_source if launcher else source
        if user_source:
            job_facets["sourceCode"] = F.source_code(user_source)
        loc = _source_location(state.source_path)
        if loc:
            job_facets["sourceCodeLocation"] = loc
        return job_facets

    def _dataset_name(self, state: _RunState, artifact: dict[str, Any]) -> tuple[str, str]:
        """(namespace, name) of an input: the name its producer gave it, else its URI."""
        uri = str(artifact.get("uri") or "")
        digest = artifact.get("sha256")
        found = state.by_uri.get(uri) or (state.by_digest.get(str(digest)) if digest else None)
        return found or _external_name(uri)

    def _output_name(
        self, pipeline: str, task: str, output: str, a: dict[str, Any], external: bool
    ) -> tuple[str, str]:
        if external:  # an importer's artifact keeps the name of where it lives
            return _external_name(str(a.get("uri") or ""))
        return self.namespace, f"{pipeline}/{task}/{output}"

    def _remember(self, state: _RunState, a: dict[str, Any], ds: tuple[str, str]) -> None:
        with self._lock:
            if a.get("uri"):
                state.by_uri[str(a["uri"])] = ds
            if a.get("sha256"):
                state.by_digest[str(a["sha256"])] = ds

    def _input_dataset(self, state: _RunState, name: str, a: dict[str, Any]) -> Event:
        ns, ds_name = self._dataset_name(state, a)
        ds: Event = {"namespace": ns, "name": ds_name, "facets": _artifact_facets(a, None)}
        if a.get("size") is not None:
            ds["inputFacets"] = {
                "inputStatistics": F.spec_facet("inputStatistics", size=int(a["size"]))
            }
        return ds

    def _output_dataset(
        self,
        state: _RunState,
        pipeline: str,
        task: str,
        output: str,
        a: dict[str, Any],
        external: bool = False,
    ) -> Event:
        uri = str(a.get("uri") or "")
        ns, name = self._output_name(pipeline, task, output, a, external)
        self._remember(state, a, (ns, name))
        local = _local_path(uri)
        tabular = "Dataset" in (artifact_type(a) or "")
        stats = inspect_path(local, tabular=tabular) if local else None
        ds: Event = {"namespace": ns, "name": name, "facets": _artifact_facets(a, stats)}
        size = a.get("size") if a.get("size") is not None else (stats.size if stats else None)
        out_stats = {
            "size": size,
            "rowCount": stats.row_count if stats else None,
            "fileCount": stats.file_count if stats else None,
        }
        out_stats = {k: int(v) for k, v in out_stats.items() if v is not None}
        if out_stats:
            ds["outputFacets"] = {"outputStatistics": F.spec_facet("outputStatistics", **out_stats)}
        return ds


def artifact_type(a: dict[str, Any]) -> str | None:
    """``system.Dataset`` from a type given as a string or as KFP's ``{"schemaTitle": ...}``."""
    t = a.get("type")
    if isinstance(t, dict):
        t = t.get("schemaTitle")
    return str(t) if t else None


def _artifacts(io: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, items in sorted((io.get("artifacts") or {}).items()):
        for a in items if isinstance(items, list) else [items]:
            if isinstance(a, dict) and a.get("uri"):
                out.append((name, a))
    return out


def _artifact_facets(a: dict[str, Any], stats: Any) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if a.get("sha256"):
        facets["version"] = F.spec_facet("version", datasetVersion=f"sha256:{a['sha256']}")
    if stats is not None and stats.fields:
        facets["schema"] = F.spec_facet("schema", fields=stats.fields)
    meta = a.get("metadata") or {}
    facets["workbench_artifact"] = F.custom_facet(
        "workbench_artifact",
        uri=str(a.get("uri")),
        type=artifact_type(a),
        sha256=a.get("sha256"),
        format=stats.format if stats is not None else None,
        metadata={k: short_json(v, 200) for k, v in list(meta.items())[:20]} if meta else None,
    )
    return facets


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("/"):
        return uri
    return None


def _external_name(uri: str) -> tuple[str, str]:
    """OpenLineage's naming for a location: ``file`` + path, ``s3://bucket`` + key, ..."""
    local = _local_path(uri)
    if local is not None:
        return "file", local
    scheme, sep, rest = uri.partition("://")
    if sep:
        authority, _, path = rest.partition("/")
        return f"{scheme}://{authority}", path or "/"
    return "file", uri


def _source_location(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    from workbench_dsl.backends.lineage.launchers import source_location

    return source_location(path)


__all__ = ["LineageRecorder", "now_iso", "short_json"]
