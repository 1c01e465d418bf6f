"""What a replayed task's pod gets, as in its run: secrets, config maps, field paths, volumes.

The same stand-ins the engine gives an attempt (``engine/orchestrator/pod.py``),
read now from the local root: a secret or config map that is not set here is
refused before anything starts, with the command that sets it. A name the run
took from an upstream task's output or from a pipeline parameter is the one the
run store recorded. Values go only into the replay's environment and into the
tmpfs mounts of its own mount namespace, never into a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench_dsl.engine import mounts, platform
from workbench_dsl.engine.orchestrator import pod
from workbench_dsl.errors import UsageError


def _name_of(store: Any, run_id: str, row: Any, params: dict[str, Any]) -> pod.NameOf:
    """Resolves an object's name as the run did (from what the run store recorded)."""
    parent = row["parent"]

    def name_of(name: str | None, source: tuple[tuple[str, str], ...]) -> str | None:
        src = dict(source)
        if "task" in src:
            producer = f"{parent}/{src['task']}" if parent else src["task"]
            rows = [t for t in store.tasks(run_id) if t["task"] == producer]
            outputs = json.loads(rows[0]["outputs_json"] or "{}") if rows else {}
            value = (outputs.get("parameters") or {}).get(src["key"])
            return None if value in (None, "") else str(value)
        if "input" in src:
            if parent:  # an input of a sub-DAG: the run store keeps no DAG's inputs
                raise UsageError(
                    f"cannot replay {row['task']}: it names a secret, config map or volume "
                    f"by its DAG's input {src['input']!r}, which the run did not record"
                )
            value = params.get(src["input"])
            return None if value in (None, "") else str(value)
        return name or None

    return name_of


def standins(
    lr: Any, spec: Any, run_id: str, row: Any, scratch: Path
) -> tuple[dict[str, str], list[dict[str, Any]], list[str]]:
    """The env vars, mounts and secret values (to mask) the task's pod had in its run.

    Raises:
        UsageError: a secret, config map or key not set here, or volumes this machine
            cannot mount.
    """
    from workbench_dsl.engine.store import open_reader

    root = Path(lr.root)
    store = open_reader(lr.runs_db)
    try:
        params = store.run_parameters(run_id)
        plat = platform.plan(spec, params).for_executor(row["executor"])
        if not (plat.env_refs or plat.mounts or plat.field_env):
            return {}, [], []
        return _standins(store, spec, run_id, row, params, plat, root, scratch)
    finally:
        store.close()


def _standins(
    store: Any,
    spec: Any,
    run_id: str,
    row: Any,
    params: dict[str, Any],
    plat: platform.ExecutorPlatform,
    root: Path,
    scratch: Path,
) -> tuple[dict[str, str], list[dict[str, Any]], list[str]]:
    name_of = _name_of(store, run_id, row, params)
    secrets: list[str] = []
    try:
        env = pod.env_from_objects(root, plat, name_of, secrets, digests=False)
        env.update(plat.env_for(pod.pod_name_of(spec.name, run_id, row["task"], "replay")))
        found = pod.mounts_for(root, plat, name_of, secrets, scratch / "volumes")
    except ValueError as e:
        raise UsageError(f"cannot replay {row['task']}: {e}") from None
    if found:
        why = mounts.available()
        if why is not None:
            raise UsageError(f"cannot replay {row['task']}: {why}")
        for m in found:
            problem = mounts.path_problem(str(m["path"]))
            if problem is not None:
                raise UsageError(f"cannot replay {row['task']}: {problem}")
    return env, found, secrets
