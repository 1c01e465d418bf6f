"""Past runs as Python objects: ``get_run``, ``latest_run``, ``list_runs``.

Read-only and safe while runs go on: the client opens the run store with a
connection that cannot write (``PRAGMA query_only``) and reads each run in one
read transaction, so a run being written by an engine is seen as one
consistent snapshot (SQLite WAL readers never block writers, nor wait for them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from workbench_dsl.client._artifacts import METRICS_TYPES, ArtifactRef
from workbench_dsl.errors import UsageError

#: Task kinds that ran a program (DAGs, loops and conditions only group them).
_EXECUTOR_KINDS = ("container", "importer", "stub")


@dataclass(frozen=True)
class Task:
    """One task of a past run.

    Attributes:
        name: Qualified name in the run (``for-loop-2[1]/train``).
        status: ``SUCCEEDED``, ``FAILED``, ``SKIPPED``, ``CANCELLED``, ...
        cached: Its outputs came from the cache.
        attempts: Attempts made in this run.
        duration_s: Wall time of its last attempt.
        cost: Cost from its compute profile's price.
        error: One line, when it failed.
        component: The component it ran (``comp-train``).
        executor: The executor label in the compiled spec.
        log_path: Its log file.
        inputs: Parameter values, and :class:`ArtifactRef` (or lists of them) by name.
        outputs: Output parameter values and :class:`ArtifactRef` by name.
    """

    name: str
    status: str
    cached: bool
    attempts: int
    duration_s: float
    cost: float
    error: str | None
    component: str | None
    executor: str | None
    log_path: str | None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def metrics(self) -> dict[str, float]:
        """Numbers in its ``Metrics`` outputs' metadata, by metric name."""
        out: dict[str, float] = {}
        for value in self.outputs.values():
            for a in value if isinstance(value, list) else [value]:
                if isinstance(a, ArtifactRef) and a.type in METRICS_TYPES:
                    out.update(_numbers(a.metadata))
        return out

    def log(self) -> str:
        """The text of its last attempt's log ("" if there is none)."""
        if not self.log_path:
            return ""
        try:
            return Path(self.log_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@dataclass(frozen=True)
class Run:
    """A past (or running) local run, read at one moment.

    Attributes:
        id: The run id.
        pipeline: The pipeline's name.
        experiment: The experiment it was recorded under.
        status: ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``CANCELLED`` or ``INTERRUPTED``.
        params: The pipeline parameters it ran with.
        outputs: The pipeline's outputs (artifacts as :class:`ArtifactRef`).
        created_at: When it started.
        duration_s: Seconds it took (so far, while it runs).
        cost: Its cost from the compute profiles' prices.
        error: The first failure, if any.
        source: What was run (a module ref or a YAML path).
        tasks: Its tasks by qualified name.
    """

    id: str
    pipeline: str
    experiment: str
    status: str
    params: dict[str, Any]
    outputs: dict[str, Any]
    created_at: datetime
    duration_s: float | None
    cost: float
    error: str | None
    source: str | None
    tasks: dict[str, Task]
    spec_text: str = field(repr=False, default="")

    def task(self, name: str) -> Task:
        """A task by qualified name or by its last part (``train`` for ``loop/train``)."""
        if name in self.tasks:
            return self.tasks[name]
        found = [t for t in self.tasks.values() if t.short_name == name]
        if len(found) == 1:
            return found[0]
        names = ", ".join(self.tasks)
        if not found:
            raise KeyError(f"run {self.id} has no task {name!r} (tasks: {names})")
        raise KeyError(f"{name!r} names several tasks of run {self.id}: give the full name")

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"

    @cached_property
    def metrics(self) -> dict[str, float]:
        """Every metric of the run: ``<task>.<metric>`` from ``Metrics`` outputs and
        ``@sweep`` results (``<task>.<objective>``, its best value)."""
        from workbench_dsl.client.compare import run_metrics

        return run_metrics(self)


def _numbers(d: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _values(recorded: str | None) -> dict[str, Any]:
    """A task's stored ``{"parameters", "artifacts"}`` as one dict of values and refs."""
    if not recorded:
        return {}
    data = json.loads(recorded)
    out: dict[str, Any] = dict(data.get("parameters") or {})
    for name, listed in (data.get("artifacts") or {}).items():
        refs = [ArtifactRef.from_record(a) for a in listed]
        out[name] = refs[0] if len(refs) == 1 else refs
    return out


def _output_value(v: Any) -> Any:
    if isinstance(v, dict) and "uri" in v and "sha256" in v and "type" in v:
        return ArtifactRef.from_record(v)
    if isinstance(v, list) and v and all(isinstance(x, dict) and "uri" in x for x in v):
        return [ArtifactRef.from_record(x) for x in v]
    return v


def _open(root: str | Path | None) -> Any:
    from workbench_dsl.engine.store import open_reader
    from workbench_dsl.paths import LocalRoot, local_root

    lr = LocalRoot(Path(root)) if root is not None else local_root()
    return open_reader(lr.runs_db)


def _read_run(store: Any, row: Any) -> Run:
    from workbench_dsl.engine.run_view import run_duration, run_status

    run_id = row["run_id"]
    tasks = {}
    for t in store.tasks(run_id):
        if t["kind"] not in _EXECUTOR_KINDS:
            continue
        tasks[t["task"]] = Task(
            name=t["task"],
            status=t["status"],
            cached=bool(t["cached"]),
            attempts=int(t["attempts"] or 0),
            duration_s=round(float(t["duration_s"] or 0.0), 3),
            cost=round(float(t["cost"] or 0.0), 8),
            error=t["error"],
            component=t["component"],
            executor=t["executor"],
            log_path=t["log_path"],
            inputs=_values(t["inputs_json"]),
            outputs=_values(t["outputs_json"]),
        )
    outputs = json.loads(row["outputs_json"]) if row["outputs_json"] else {}
    return Run(
        id=run_id,
        pipeline=row["pipeline"],
        experiment=row["experiment"],
        status=run_status(row),
        params=store.run_parameters(run_id),
        outputs={k: _output_value(v) for k, v in outputs.items()},
        created_at=datetime.fromtimestamp(row["created_at"]),
        duration_s=run_duration(row),
        cost=round(float(row["cost"] or 0.0), 8) or round(sum(t.cost for t in tasks.values()), 8),
        error=row["error"],
        source=row["source"],
        tasks=tasks,
        spec_text=row["spec_text"],
    )


def _snapshot(store: Any, run_ids: list[str]) -> list[Run]:
    """Read the runs inside one read transaction: a consistent view while engines write."""
    store.conn.execute("BEGIN")
    try:
        runs = []
        for run_id in run_ids:
            row = store.get_run(run_id)
            if row is not None:
                runs.append(_read_run(store, row))
        return runs
    finally:
        store.conn.execute("COMMIT")


def get_run(run_id: str, *, root: str | Path | None = None) -> Run:
    """A past run by id (or a unique prefix of one).

    Args:
        run_id: As ``workbench runs list`` shows it.
        root: The local root (default: ``WORKBENCH_HOME`` or the project's ``.workbench``).

    Raises:
        UsageError: no run (or several) match.
    """
    store = _open(root)
    try:
        found = _snapshot(store, [store.find_run(run_id)["run_id"]])
        if not found:  # deleted between the lookup and the read
            raise UsageError(f"no run {run_id!r}")
        return found[0]
    finally:
        store.close()


def list_runs(
    pipeline: str | None = None,
    *,
    status: str | None = None,
    experiment: str | None = None,
    limit: int | None = 20,
    root: str | Path | None = None,
) -> list[Run]:
    """Past runs, newest first, filtered by pipeline name, status and experiment.

    ``status="INTERRUPTED"`` finds runs whose engine died; ``limit=None`` returns all.
    """
    try:
        store = _open(root)
    except UsageError:  # no run store yet: no runs
        return []
    try:
        stored = "RUNNING" if status == "INTERRUPTED" else status
        rows = store.query_runs(
            experiment=experiment,
            pipeline=pipeline,
            status=stored,
            limit=None if status == "INTERRUPTED" else limit,
        )
        runs = _snapshot(store, [r["run_id"] for r in rows])
    finally:
        store.close()
    if status is not None:
        runs = [r for r in runs if r.status == status]
    return runs if limit is None else runs[:limit]


def latest_run(
    pipeline: str,
    *,
    status: str | None = None,
    experiment: str | None = None,
    root: str | Path | None = None,
) -> Run | None:
    """The newest run of ``pipeline`` (with that status, in that experiment), or None."""
    runs = list_runs(pipeline, status=status, experiment=experiment, limit=1, root=root)
    return runs[0] if runs else None
