"""Start or resume a run: the engine's entry points (the CLI and the Python API call these).

``start`` takes compiled PipelineSpec text (or a dict) and parameters, checks
them, refuses what cannot run here before anything starts, records the run
and executes it; ``resume`` picks a stopped run up from the run store.
Both return a :class:`~workbench_dsl.engine.orchestrator.summary.RunSummary`.

The run's lifecycle is in :func:`_execute`, in one place: the run starts
(``Orchestrator.run``), it ends with a status (``SUCCEEDED``, ``FAILED``,
``CANCELLED``) or an internal error, and the store and observers hear of it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from workbench_dsl.engine import platform as plat
from workbench_dsl.engine import preflight
from workbench_dsl.engine.approval_channel import ApprovalChannel
from workbench_dsl.engine.events import Observers, RunInfo
from workbench_dsl.engine.orchestrator.loop import Orchestrator
from workbench_dsl.engine.orchestrator.signals import install_signal_handlers
from workbench_dsl.engine.orchestrator.summary import RunOptions, RunSummary
from workbench_dsl.engine.spec import PipelineSpec, load_documents
from workbench_dsl.engine.store import DEFAULT_EXPERIMENT, RunStore
from workbench_dsl.errors import UsageError
from workbench_dsl.paths import LocalRoot, local_root


def default_max_parallel() -> int:
    """Enough attempts at once that sleeping or I/O-bound tasks are never held back."""
    return max(8, 4 * (os.cpu_count() or 1))


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _runner(root: LocalRoot) -> Any:
    return _LazyRunner(root)  # the orchestrator warms it up at the first task that runs


class _LazyRunner:
    """A ``TaskRunner`` made at the first task that really runs.

    Making one starts threads, a socket and the run's cgroup: a fully cached run
    (every task a cache hit) needs none of it, and its start-up was a visible share
    of a cached rerun of a small pipeline.
    """

    def __init__(self, root: LocalRoot) -> None:
        self._root = root
        self._real: Any = None
        self._closed = False

    def _get(self) -> Any:
        if self._real is None:
            if self._closed:
                raise RuntimeError("TaskRunner used after close()")
            from workbench_dsl.engine.runner import TaskRunner

            self._real = TaskRunner(self._root)
        return self._real

    def warmup(self) -> None:
        self._get().warmup()

    def submit(self, spec: Any) -> Any:
        return self._get().submit(spec)

    def cancel(self, task: str | None = None) -> None:
        if self._real is not None:
            self._real.cancel(task)

    def close(self) -> None:
        self._closed = True
        if self._real is not None:
            self._real.close()


def prepare(
    source: str | dict[str, Any],
    params: dict[str, Any] | None,
    *,
    from_cli: bool,
    root: LocalRoot | None = None,
    inputs: dict[str, str] | None = None,
    store: RunStore | None = None,
) -> tuple[PipelineSpec, dict[str, Any], plat.PlatformPlan]:
    """Parse the spec and run the preflight (``preflight.py``; no side effects but
    keeping the parsed spec in ``store``, when given, for the next run of the same text).

    Raises:
        UsageError: a bad spec, or every problem the preflight found, at once.
    """
    spec = parse_spec(source, store) if store is not None else PipelineSpec.parse(source)
    typed, plan = preflight.check(
        spec,
        dict(params or {}),
        from_cli=from_cli,
        root=root.root if root is not None else None,
        inputs=inputs,
    )
    return spec, typed, plan


def parse_spec(source: str | dict[str, Any], store: RunStore) -> PipelineSpec:
    """:meth:`PipelineSpec.parse`, reusing the documents of a YAML text parsed before.

    Parsing a compiled pipeline's YAML takes tens of milliseconds (most of a cached
    rerun of a small pipeline); its documents are kept in the run store as JSON, which
    loads many times faster, when JSON holds them exactly (a YAML date would not).
    """
    if not isinstance(source, str) or source.lstrip().startswith("{"):
        return PipelineSpec.parse(source)  # a dict, or JSON: no YAML to skip
    sha = hashlib.sha256(source.encode()).hexdigest()
    docs = store.parsed_spec(sha)
    if docs is not None:
        return PipelineSpec.from_documents(docs, source)
    docs = load_documents(source)
    spec = PipelineSpec.from_documents(docs, source)
    try:
        text = json.dumps(docs)
        exact = json.loads(text) == docs
    except (TypeError, ValueError):
        exact = False
    if exact:
        store.keep_parsed_spec(sha, text)
    return spec


def _input_artifacts(
    spec: PipelineSpec, inputs: dict[str, str], root: LocalRoot
) -> dict[str, list[dict[str, Any]]]:
    """Store the pipeline's input artifacts (``--input NAME=PATH``) like any artifact."""
    from workbench_dsl.engine.attempts import OutputProblem, import_artifact
    from workbench_dsl.engine.cas import ArtifactStore

    cas = ArtifactStore(root.artifacts)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, path in inputs.items():
        d = spec.input_artifact_definitions.get(name) or {}
        type_schema = dict(d.get("artifactType") or {})
        try:
            entry, _ = import_artifact(os.path.abspath(path), type_schema, {}, cas)
        except OutputProblem as e:  # a link out of the folder
            raise UsageError(
                f"input artifact {name!r}: {str(e).removeprefix('importer: ')}"
            ) from None
        except (OSError, ValueError, shutil.Error) as e:  # a device, a pipe, unreadable
            reason = _first_reason(e.args[0] if isinstance(e, shutil.Error) and e.args else e)
            raise UsageError(
                f"input artifact {name!r}: {path} cannot be stored: {reason}; "
                "give a regular file or a folder of regular files"
            ) from None
        entry["name"] = name
        out[name] = [entry]
    return out


def _first_reason(why: object) -> str:
    """One line out of an error, or out of the first of ``shutil.copytree``'s (src, dst, why)."""
    if isinstance(why, list) and why and isinstance(why[0], tuple) and len(why[0]) == 3:
        return str(why[0][2])
    return str(why).splitlines()[0] if str(why) else type(why).__name__


def start(
    source: str | dict[str, Any],
    params: dict[str, Any] | None = None,
    *,
    from_cli: bool = False,
    root: LocalRoot | None = None,
    cache: bool = True,
    max_parallel: int | None = None,
    observers: Iterable[Any] = (),
    origin: str | None = None,
    runner: Any = None,
    experiment: str = DEFAULT_EXPERIMENT,
    inputs: dict[str, str] | None = None,
) -> RunSummary:
    """Run a compiled pipeline to its end.

    Args:
        source: Compiled YAML/JSON text, or the PipelineSpec as a dict.
        params: Pipeline parameters: ``-p`` strings (``from_cli``) or Python values.
        root: The local root (default: ``WORKBENCH_HOME`` or the project's ``.workbench``).
        cache: Use cached results where the pipeline enables caching.
        max_parallel: Most attempts at once (default :func:`default_max_parallel`).
        observers: :class:`~workbench_dsl.engine.events.RunObserver` s.
        origin: What the user ran (a path or module ref), kept with the run.
        runner: A started ``TaskRunner`` to use (closed at the end); made here if None.
        experiment: The experiment the run is recorded under (``workbench experiments``).
        inputs: Pipeline input artifacts: name -> local file or folder.
    """
    root = (root or local_root()).ensure()
    store = RunStore(root.runs_db)
    try:
        spec, typed, plan = prepare(
            source, params, from_cli=from_cli, root=root, inputs=inputs, store=store
        )
        artifacts = _input_artifacts(spec, dict(inputs or {}), root)
    except BaseException:
        store.close()
        raise
    options = RunOptions(cache=cache, max_parallel=max(1, max_parallel or default_max_parallel()))
    run_id = new_run_id()
    text = spec.text
    store.create_run(
        run_id,
        spec.name,
        text,
        hashlib.sha256(text.encode()).hexdigest(),
        typed,
        {"cache": options.cache, "max_parallel": options.max_parallel, "inputs": artifacts},
        origin,
        experiment=experiment,
    )
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _execute(
        spec,
        typed,
        plan,
        root,
        store,
        run_id,
        options,
        observers,
        created,
        False,
        runner,
        origin,
        artifacts,
    )


def resume(
    run_ref: str,
    *,
    root: LocalRoot | None = None,
    max_parallel: int | None = None,
    observers: Iterable[Any] = (),
    runner: Any = None,
) -> RunSummary:
    """Finish a stopped run (killed, cancelled or failed) without redoing completed tasks."""
    root = (root or local_root()).ensure()
    store = RunStore(root.runs_db)
    row = store.find_run(run_ref)
    run_id = row["run_id"]
    spec = parse_spec(row["spec_text"], store)
    typed = store.run_parameters(run_id)
    plan = plat.plan(spec, typed)
    opts = json.loads(row["options_json"] or "{}")
    options = RunOptions(
        cache=bool(opts.get("cache", True)),
        max_parallel=max(
            1, max_parallel or int(opts.get("max_parallel") or default_max_parallel())
        ),
    )
    store.claim_for_resume(run_id)
    created = datetime.fromtimestamp(row["created_at"], UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.lose_open_attempts(run_id)
    return _execute(
        spec,
        typed,
        plan,
        root,
        store,
        run_id,
        options,
        observers,
        created,
        True,
        runner,
        row["source"],
        dict(opts.get("inputs") or {}),
    )


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run with the cyclic garbage collector's first threshold raised, then as it was.

    A run keeps every task's node, scope and row alive to its end, so collections
    find little but cost more the bigger the run: at the default threshold they were
    a fifth of a cached rerun of 10,000 tasks, and the reason its cost per task grew
    with its size. Collections still happen (every 10,000 allocations, not 700).
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 10_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _execute(
    spec: PipelineSpec,
    typed: dict[str, Any],
    plan: plat.PlatformPlan,
    root: LocalRoot,
    store: RunStore,
    run_id: str,
    options: RunOptions,
    observers: Iterable[Any],
    created: str,
    resumed: bool,
    runner: Any,
    origin: str | None = None,
    inputs: dict[str, list[dict[str, Any]]] | None = None,
) -> RunSummary:
    from workbench_dsl.engine.lineage_observer import lineage_observer

    # Every run emits OpenLineage events (a local file by default; see docs/lineage.md).
    obs = Observers([*observers, lineage_observer()])
    runner = runner or _runner(root)
    orchestrator = Orchestrator(
        spec=spec,
        root=root,
        run_id=run_id,
        params=typed,
        store=store,
        runner=runner,
        observers=obs,
        options=options,
        platform=plan,
        created_utc=created,
        resumed=resumed,
        origin=origin,
        inputs=inputs,
    )
    restore = install_signal_handlers(orchestrator)
    # Manual approvals are decided here, from outside the run (engine/approval_channel.py).
    approvals = ApprovalChannel(root, run_id, spec.name).open()
    summary: RunSummary | None = None
    try:
        with _fewer_collections():
            summary = orchestrator.run()
    except BaseException as e:
        store.finish_run(run_id, "FAILED", f"internal error: {type(e).__name__}: {e}", {}, 0.0)
        raise
    finally:
        restore()
        runner.close()
        approvals.close(summary.status if summary is not None else "FAILED")
    error = None
    if summary.failures:
        f = summary.failures[0]
        error = f"{f['task']}: {f['error']}"
    elif summary.status == "CANCELLED":
        error = orchestrator.cancel_reason or "cancelled"
    store.finish_run(run_id, summary.status, error, summary.outputs, summary.cost)
    store.close()
    obs.run_end(
        RunInfo(
            run_id,
            spec.name,
            typed,
            str(root.root),
            resumed,
            status=summary.status,
            outputs=summary.outputs,
            error=error,
            duration_s=summary.duration_s,
            origin=origin,
        )
    )
    return summary
