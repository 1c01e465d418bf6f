"""Container tasks: cache lookup, attempts in the task runner, retries, outputs.

The path of one container task through its states::

    PENDING -> VERIFYING -> CACHED | SUCCEEDED (reused on resume) | READY (check failed)
    PENDING -> READY -> RUNNING [<-> WAITING_FOR_APPROVAL] -> STORING_OUTPUTS -> SUCCEEDED
                         RUNNING | STORING_OUTPUTS -> WAITING_TO_RETRY -> READY -> ...
                         ... -> FAILED | CANCELLED

Everything slow (checking cached artifacts, hashing outputs into the CAS) runs
in the I/O pool and answers with a message.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_dsl import _env
from workbench_dsl.engine import attempts as att
from workbench_dsl.engine import kube_objects
from workbench_dsl.engine.graph import Node
from workbench_dsl.engine.orchestrator import messages as m
from workbench_dsl.engine.orchestrator import pod, status_lines
from workbench_dsl.engine.orchestrator.states import TaskState
from workbench_dsl.engine.placeholders import Resolver, RunContext
from workbench_dsl.engine.retry import RetryPolicy
from workbench_dsl.engine.spec import caching_enabled
from workbench_dsl.engine.task_api import TaskOutcome, TaskSpec
from workbench_dsl.errors import UsageError

if TYPE_CHECKING:
    from workbench_dsl.engine.orchestrator.loop import Orchestrator

S = TaskState


def context(o: Orchestrator, node: Node) -> RunContext:
    return RunContext.for_task(
        run_id=o.run_id,
        task=node.qname,
        pipeline=o.spec.name,
        pipeline_root=str(o.run_dir),
        workspace=str(o.run_dir / "workspace"),
        create_time_utc=o.created_utc,
    )


def resolve_constants(
    o: Orchestrator, node: Node, params: dict[str, Any], arts: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Resolve placeholders in string inputs (job/task names, f-strings) as the driver does."""
    todo = {k: v for k, v in params.items() if isinstance(v, str) and "{{$" in v}
    if not todo:
        return params
    ei = {
        "inputs": {
            "parameterValues": {k: v for k, v in params.items() if k not in todo},
            "artifacts": {k: {"artifacts": v} for k, v in arts.items()},
        },
        "outputs": {},
    }
    resolver = Resolver(ei, context(o, node))
    out = dict(params)
    for k, v in todo.items():
        out[k] = resolver.resolve_string(v)
    return out


def executor_of(o: Orchestrator, node: Node) -> tuple[str, dict[str, Any]]:
    label = str(node.component.get("executorLabel") or "")
    return label, o.spec.executor(label)


def prepare(o: Orchestrator, node: Node, absent: list[str]) -> None:
    """Type the inputs, compute the cache key, then reuse, take from the cache, or queue it."""
    params, errors = att.typed_inputs(node.component, node.params, absent)
    errors += att.check_artifacts(node.component, node.artifacts, absent)
    if errors:
        o.finish(node, S.FAILED, "; ".join(errors))
        return
    node.params = params
    label, executor = executor_of(o, node)
    plat = o.platform.for_executor(label)
    node.cost_per_hour = plat.cost_per_hour
    try:
        env = {
            **plat.env_for(node.qname),
            **pod.object_env(o, node, plat, digests=True),
            **pod.mounted_digests(o, node, plat),
        }
    except (ValueError, UsageError) as e:
        o.finish(node, S.FAILED, str(e))
        return
    node.key = o.keys.key(node.component, executor, env, params, node.artifacts)
    prev = o.prev.get(node.qname)
    node.attempts = int(prev["attempts"] or 0) if prev is not None else 0
    if prev is not None and prev["status"] == "SUCCEEDED" and prev["input_key"] == node.key:
        _verify(o, node, _json(prev["outputs_json"]), "reused")
        return
    if o.options.cache and caching_enabled(node.task):
        entry = o.recorder.store.cache_get(node.key)
        if entry is not None:
            _verify(o, node, entry, "cached")
            return
    o.transition(node, S.READY)
    o.ready.append(node)


def _verify(o: Orchestrator, node: Node, entry: dict[str, Any], source: str) -> None:
    """Use stored outputs after checking their artifacts (in the I/O pool when there are any)."""
    o.transition(node, S.VERIFYING)
    arts = [a for v in (entry.get("artifacts") or {}).values() for a in v if a.get("sha256")]
    o.inflight_io += 1
    if not arts:
        o.post(m.CacheChecked(node, entry, source))
        return

    def check() -> None:
        ok = all(o.cas.verify(a["uri"], a["sha256"], a.get("size")) for a in arts)
        o.post(m.CacheChecked(node, entry if ok else None, source))

    o.io.submit(check)


def on_checked(o: Orchestrator, node: Node, entry: dict[str, Any] | None, source: str) -> None:
    if node.state is not S.VERIFYING:
        return
    if entry is None:
        if source == "cached" and node.key:
            o.recorder.cache_drop(node.key)
        o.notice(
            f"{source} outputs of {node.qname} failed verification (an artifact is missing "
            f"or changed); running it again"
        )
        o.transition(node, S.READY)
        o.ready.append(node)
        return
    node.out_params = dict(entry.get("parameters") or {})
    node.out_artifacts = dict(entry.get("artifacts") or {})
    if source == "cached":
        node.cached = True
        if node.key:
            o.recorder.cache_hit(node.key)
        node.duration_s = 0.0
    else:
        node.reused = True
        node.duration_s = float((o.prev.get(node.qname) or {"duration_s": 0})["duration_s"] or 0)
    o.obs.task_start(o.task_info(node))
    o.finish(node, S.CACHED if source == "cached" else S.SUCCEEDED)


def paths(o: Orchestrator, node: Node, attempt: int) -> tuple[Path, Path, Path]:
    rel = att.safe_path(node.qname)
    workdir = o.run_dir / "work" / rel / f"attempt-{attempt}"
    log = o.run_dir / "logs" / f"{rel}.{attempt}.log"
    status = o.run_dir / "status" / f"{rel}.txt"
    return workdir, log, status


def ephemeral_dir(o: Orchestrator, node: Node, attempt: int) -> Path:
    """Where an attempt's generic ephemeral volumes live: made with it, removed with it."""
    workdir, _, _ = paths(o, node, attempt)
    return workdir.with_name(f"{workdir.name}.volumes")


def submit(o: Orchestrator, node: Node) -> None:
    """Start the next attempt of a READY task in the task runner."""
    label, executor = executor_of(o, node)
    plat = o.platform.for_executor(label)
    try:
        mounts = pod.volume_mounts(o, node, plat, ephemeral_dir(o, node, node.attempts + 1))
        object_vars = pod.object_env(o, node, plat, digests=False)
    except (ValueError, UsageError) as e:
        o.finish(node, S.FAILED, str(e))
        return
    node.attempts += 1
    attempt = node.attempts
    workdir, log, status_file = paths(o, node, attempt)
    if workdir.exists():
        from workbench_dsl.engine.cas import remove

        remove(workdir)
    for d in (log.parent, status_file.parent):
        if d not in o.made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            o.made_dirs.add(d)
    env = {
        str(e.get("name")): str(e.get("value", ""))
        for e in (executor.get("container") or {}).get("env") or []
        if e.get("name")
    }
    env.update(plat.env_for(pod.pod_name(o, node, attempt)))
    env.update(object_vars)
    env.update(
        {
            _env.ENGINE: "local",
            _env.HOME: str(o.root.root),
            _env.RUN_ID: o.run_id,
            _env.PIPELINE: o.spec.name,
            _env.TASK: node.qname,
            _env.ATTEMPT: str(attempt),
            _env.RUN_DIR: str(o.run_dir),
            _env.STATUS_FILE: str(status_lines.task_file(status_file)),
        }
    )
    ei = att.executor_input(node.component, node.params, node.artifacts, workdir)
    spec = TaskSpec(
        run_id=o.run_id,
        task=node.qname,
        attempt=attempt,
        executor=executor,
        executor_input=ei,
        env=env,
        workdir=workdir,
        log_path=log,
        timeout=plat.timeout,
        mounts=tuple(mounts),
        mask=tuple(kube_objects.mask_forms(o.secret_values)),
    )
    node.log_path = str(log)
    if node.started is None:
        node.started = time.time()
    # Known before the attempt's row is written, so `runs show` from another process
    # can read a running task's status line (e.g. "waiting for approval: ...").
    with o.watcher.lock:
        o.recorder.status_files[node.qname] = status_file
    o.transition(node, S.RUNNING, persisted=True)
    o.recorder.attempt_started(node, attempt, log, workdir)
    o.running[node.qname] = node
    if attempt == 1 or node.retries_done == 0:
        o.obs.task_start(o.task_info(node))
    try:
        future: Future[TaskOutcome] = o.runner.submit(spec)
    except Exception as e:  # the runner refused outright (closed): fail this attempt
        future = Future()
        future.set_result(TaskOutcome(status="FAILED", error=f"task runner: {e}"))

    def done(f: Future[TaskOutcome], n: Node = node, a: int = attempt) -> None:
        o.post(m.AttemptEnded(n, a, f))

    future.add_done_callback(done)


def on_attempt_ended(
    o: Orchestrator, node: Node, attempt: int, future: Future[TaskOutcome]
) -> None:
    o.running.pop(node.qname, None)
    with o.watcher.lock:
        status_file = o.recorder.status_files.get(node.qname)
    if status_file is not None:
        status_lines.settle(status_file, o.mask_secrets)
    try:
        outcome = future.result()
    except Exception as e:
        outcome = TaskOutcome(status="FAILED", error=f"task runner error: {type(e).__name__}: {e}")
    for n in outcome.notices:
        o.notice(n)
    if any(
        ref.kind == "ephemeral" for ref in o.platform.for_executor(executor_of(o, node)[0]).mounts
    ):
        o.io.submit(shutil.rmtree, ephemeral_dir(o, node, attempt), True)  # deleted with its pod
    node.duration_s += outcome.duration_s
    if outcome.status != "SUCCEEDED":
        _attempt_failed(o, node, attempt, outcome)
        return
    o.transition(node, S.STORING_OUTPUTS, persisted=True)
    o.inflight_io += 1
    workdir, _, _ = paths(o, node, attempt)

    def store() -> None:
        try:
            out_params = att.output_parameters(node.component, outcome.executor_output)
            out_arts, notes = att.store_outputs(
                node.component, outcome.executor_output, workdir, o.cas
            )
            result: Any = (out_params, out_arts, notes)
        except Exception as e:  # an output that does not fit fails the attempt
            result = e
        o.post(m.OutputsStored(node, attempt, outcome, result))

    if (node.component.get("outputDefinitions") or {}).get("artifacts"):
        o.io.submit(store)  # files to hash and move into the CAS
    else:
        store()  # parameters only: nothing slow, so no round trip through the I/O pool


def _attempt_failed(o: Orchestrator, node: Node, attempt: int, outcome: TaskOutcome) -> None:
    status = outcome.status if outcome.status in ("FAILED", "TIMED_OUT", "CANCELLED") else "FAILED"
    error = outcome.error or status.lower()
    if o.secret_values:
        error = kube_objects.redact(error, o.secret_values)
    node.error = error
    o.recorder.attempt_failed(node, attempt, status, outcome.duration_s, outcome.exit_code)
    if status == "CANCELLED" or o.cancelled:
        o.finish(node, S.CANCELLED, error)
        return
    policy = RetryPolicy.of(node.task)
    elapsed = time.time() - (node.started or time.time())
    if not policy.allows(node.retries_done + 1, elapsed) or (o.stopping and not node.exempt):
        o.finish(node, S.FAILED, error)
        return
    node.retries_done += 1
    delay = policy.delay(node.retries_done)
    o.transition(node, S.WAITING_TO_RETRY, persisted=True)
    o.waiting_retry[node.qname] = node
    o.notice_task(node, f"attempt {attempt} {status.lower()}: {error}; retrying in {delay:g}s")
    # Timer waits at most TIMEOUT_MAX (about 292 years here); longer raises in its thread.
    timer = threading.Timer(min(delay, threading.TIMEOUT_MAX), o.post, args=(m.RetryDue(node),))
    timer.daemon = True
    o.timers[node.qname] = timer
    timer.start()


def on_stored(o: Orchestrator, node: Node, attempt: int, outcome: TaskOutcome, result: Any) -> None:
    if isinstance(result, Exception):
        msg = (
            str(result)
            if isinstance(result, att.OutputProblem)
            else f"storing outputs failed: {type(result).__name__}: {result}"
        )
        failed = TaskOutcome(status="FAILED", error=msg, duration_s=0.0)
        _attempt_failed(o, node, attempt, failed)
        return
    out_params, out_arts, notes = result
    for n in notes:
        o.notice(n)
    node.out_params, node.out_artifacts = out_params, out_arts
    cache_entry = None
    if node.key and caching_enabled(node.task):
        cache_entry = {
            "key": node.key,
            "pipeline": o.spec.name,
            "component": node.comp_name,
            "outputs": {"parameters": out_params, "artifacts": out_arts},
        }
    node.finished = time.time()
    with o.watcher.lock:
        status_file = o.recorder.status_files.get(node.qname)
    line = status_lines.read_line(status_file)  # masked when the attempt ended (settle)
    o.recorder.outputs_committed(
        node, attempt, outcome.duration_s, outcome.exit_code, line, cache_entry
    )
    o.finish(node, S.SUCCEEDED, persisted=True)
    workdir, _, _ = paths(o, node, attempt)
    o.io.submit(shutil.rmtree, workdir, True)


def remote_hint(node: Node) -> str:
    """Why a task that read a remote input artifact probably failed."""
    for name, listed in node.artifacts.items():
        for a in listed:
            uri = str(a.get("uri") or "")
            if not a.get("sha256") and not a.get("absent") and att.local_path(uri) is None:
                return (
                    f" (input {name} is the remote artifact {uri}, not available on this machine)"
                )
    return ""


def _json(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}
