"""Facts a step reports about itself for lineage: the model version it registered, the
endpoint it deployed, the best parameters of its sweep.

The step runtimes call these from inside the task (``note_model_version(...)`` after
registering, ``note_endpoint(...)`` after deploying, ``note_sweep(...)`` after a study).
Locally a note is one JSON line in ``$WORKBENCH_RUN_DIR/lineage-notes/<task>.jsonl``,
which the engine's lineage observer reads when the task ends; outside the local
engine (no run dir) the call does nothing. Lineage also infers the same facts from the
steps' outputs (``model_uri``, ``url``, ``best_params``); a note wins where both exist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from workbench_dsl import _env

DIRNAME = "lineage-notes"


def _path(run_dir: str | os.PathLike[str], task: str) -> Path:
    return Path(run_dir) / DIRNAME / f"{quote(task, safe='')}.jsonl"


def note(kind: str, **fields: Any) -> None:
    """Record one fact about the current task (no-op outside the local engine)."""
    run_dir = os.environ.get(_env.RUN_DIR)
    task = os.environ.get(_env.TASK)
    if not run_dir or not task:
        return
    path = _path(run_dir, task)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")
    except OSError:
        pass  # lineage never fails a step


def note_model_version(
    name: str,
    version: str | int,
    *,
    uri: str | None = None,
    alias: str | None = None,
    promoted: bool | None = None,
) -> None:
    """The step registered version ``version`` of model ``name``."""
    note(
        "model_version",
        name=name,
        version=str(version),
        uri=uri or f"models:/{name}/{version}",
        alias=alias,
        promoted=promoted,
    )


def note_endpoint(
    name: str, *, url: str | None = None, revision: str | None = None, model_uri: str | None = None
) -> None:
    """The step deployed ``model_uri`` to endpoint ``name`` (revision ``revision``)."""
    note("endpoint", name=name, url=url, revision=revision, model_uri=model_uri)


def note_sweep(
    best_params: dict[str, Any],
    *,
    best_value: float | None = None,
    objective: str | None = None,
    goal: str | None = None,
    trials: int | None = None,
) -> None:
    """The step's sweep found ``best_params``."""
    note(
        "sweep",
        best_params=best_params,
        best_value=best_value,
        objective=objective,
        goal=goal,
        trials=trials,
    )


def collect(run_dir: str | os.PathLike[str], task: str) -> list[dict[str, Any]]:
    """The notes a task left (and remove them, so a retry or resume starts clean)."""
    path = _path(run_dir, task)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    try:
        path.unlink()
    except OSError:
        pass
    found = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and "kind" in item:
            found.append(item)
    return found
