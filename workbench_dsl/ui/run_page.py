"""Everything the page of one run shows: the same details as ``workbench runs show``, its DAG,
its timeline, the share of its time no task was running, and one task's inputs, outputs,
artifact previews and attempts."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from workbench_dsl.engine import run_queries as rq
from workbench_dsl.engine.run_view import EXECUTOR_KINDS, TASK_PAGE, run_details, task_view
from workbench_dsl.ui import dag as dag_mod
from workbench_dsl.ui import timeline
from workbench_dsl.ui.previews import local_path, preview, schema_title

_SPECS: OrderedDict[str, Any] = OrderedDict()
_SPECS_LOCK = threading.Lock()
LOG_TAIL = 64 * 1024
LOG_CHUNK = 256 * 1024
#: Tasks the timeline draws (one row each); the idle share still counts every attempt.
TIMELINE_TASKS = 300


def parsed_spec(row: Any) -> Any:
    """The run's PipelineSpec, parsed once per spec (None when it cannot be read)."""
    from workbench_dsl.engine.spec import PipelineSpec

    key = str(row["spec_sha256"] or hashlib.sha256(str(row["spec_text"]).encode()).hexdigest())
    with _SPECS_LOCK:
        if key in _SPECS:
            _SPECS.move_to_end(key)
            return _SPECS[key]
    try:
        spec: Any = PipelineSpec.parse(row["spec_text"])
    except Exception:
        spec = None
    with _SPECS_LOCK:
        _SPECS[key] = spec
        while len(_SPECS) > 32:
            _SPECS.popitem(last=False)
    return spec


def signature(details: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> str:
    """Changes whenever anything the live page shows changes."""
    counts = sorted(details.get("task_counts", {}).items())
    bits = [details["status"], str(counts)] + [
        f"{t['name']}|{t['status']}|{t['attempts']}|{t['status_line']}|{t['cached']}"
        for t in [*details["tasks"], *(extra or [])]
    ]
    return hashlib.sha256("\n".join(bits).encode()).hexdigest()[:16]


def run_page(store: Any, run_ref: str, task: str | None, offset: int = 0) -> dict[str, Any]:
    """The run page's data (``run_ref``: a run id or a unique prefix of one).

    The task table is one page (``offset``); the DAG and the timeline read only
    the light columns of every task, and only the chosen task's inputs and outputs
    are loaded, so a run of 10,000 tasks renders as fast as a small one.
    """
    row = store.find_run(run_ref)
    run_id = row["run_id"]
    details = run_details(store, row, offset=offset)
    conn = store.conn
    rows = {t["task"]: dict(t) for t in rq.task_shapes(conn, run_id)}
    by_name = {t["name"]: t for t in details["tasks"]}
    # Running and failed tasks matter wherever they are in the run: always at hand.
    urgent = [
        task_view(t, details["status"] == "RUNNING")
        for t in rq.tasks_in_status(conn, run_id, ("RUNNING", "FAILED"), 200)
    ]
    for t in urgent:
        by_name.setdefault(t["name"], t)
    for name, t in by_name.items():
        if name in rows:
            rows[name]["status_line"] = t["status_line"]
    spec = parsed_spec(row)
    executors = [r for r in rows.values() if r["kind"] in EXECUTOR_KINDS]
    if task not in by_name and (task is None or task not in rows):
        task = _default_task(urgent)
    graph = dag_mod.build(spec, rows)
    run = dict(row)
    run["status"] = details["status"]
    start = row["started_at"] or row["created_at"]
    end = row["finished_at"] or (time.time() if details["status"] == "RUNNING" else None)
    now = time.time()
    intervals = [(s0, s1 or now) for s0, s1 in rq.attempt_intervals(conn, run_id)]
    busy = timeline.busy_fraction(intervals, start, end) if end else None
    # The timeline draws the first tasks that ran (one row each), with their attempts.
    drawn = executors[:TIMELINE_TASKS]  # in start order; those that never started last
    attempts = [dict(a) for a in rq.attempts_of(conn, run_id, [r["task"] for r in drawn])]
    chosen = rq.task_row(conn, run_id, task) if task else None
    chosen_attempts = [dict(a) for a in rq.attempts_of(conn, run_id, [task])] if task else []
    return {
        "run": details,
        "sig": signature(details, urgent),
        "dag_svg": dag_mod.draw(graph, run_id, task),
        "dag_truncated": graph.truncated,
        "timeline_svg": timeline.draw(run, drawn, attempts),
        "timeline_truncated": len(drawn) < len(executors),
        "idle": None if busy is None else 1.0 - busy,
        "cost_per_hour": sum(float(r["cost_per_hour"] or 0.0) for r in executors if r["attempts"]),
        "selected": _task_panel(dict(chosen), chosen_attempts) if chosen is not None else None,
        "waiting": [
            t for t in urgent if str(t["status_line"] or "").startswith("waiting for approval")
        ],
        "timeline_rows": TIMELINE_TASKS,
        "page_offset": offset,
        "page_size": TASK_PAGE,
    }


def _default_task(tasks: list[dict[str, Any]]) -> str | None:
    for wanted in ("FAILED", "RUNNING"):
        for t in tasks:
            if t["status"] == wanted:
                return str(t["name"])
    return None


def _task_panel(row: dict[str, Any], attempts: list[dict[str, Any]]) -> Any:
    inputs = json.loads(row["inputs_json"]) if row.get("inputs_json") else {}
    outputs = json.loads(row["outputs_json"]) if row.get("outputs_json") else {}
    return {
        "name": row["task"],
        "row": row,
        "attempts": [a for a in attempts if a["task"] == row["task"]],
        "inputs": _io(inputs, "inputs"),
        "outputs": _io(outputs, "outputs"),
    }


def _io(data: dict[str, Any], side: str) -> dict[str, Any]:
    params = data.get("parameters") or {}
    arts = []
    for name, items in sorted((data.get("artifacts") or {}).items()):
        for i, a in enumerate(items or []):
            p = local_path(a)
            arts.append(
                {
                    "name": name,
                    "index": i,
                    "side": side,
                    "type": schema_title(a),
                    "uri": a.get("uri"),
                    "size": a.get("size"),
                    "sha256": a.get("sha256"),
                    "metadata": a.get("metadata") or {},
                    "file": p is not None and p.is_file(),
                    # Inputs are previewed on the task that wrote them.
                    "preview": preview(a) if side == "outputs" else None,
                    "sweep": name == "trials" and "objective" in (a.get("metadata") or {}),
                }
            )
    links = {}
    for k, v in params.items():
        if isinstance(v, str) and v.startswith("models:/"):
            links[k] = "/lineage?" + urlencode({"target": v})
    return {
        "parameters": {k: json.dumps(v, default=str) for k, v in sorted(params.items())},
        "links": links,
        "artifacts": arts,
    }


def find_artifact(
    store: Any, run_id: str, task: str, side: str, name: str, index: int
) -> dict[str, Any] | None:
    """One artifact record of a task (from what the run store recorded, never a free path)."""
    row = rq.task_row(store.conn, run_id, task)
    if row is None:
        return None
    raw = row["outputs_json" if side == "outputs" else "inputs_json"]
    items = ((json.loads(raw) if raw else {}).get("artifacts") or {}).get(name) or []
    return items[index] if 0 <= index < len(items) else None


def log_chunk(
    store: Any, root: Path, run_id: str, task: str, attempt: int | None, offset: int
) -> dict[str, Any]:
    """Bytes of one attempt's log from ``offset`` (-1: its last 64 kB), to follow it live."""
    tries = store.attempts(run_id, task)
    if not tries:
        return {"attempt": None, "attempts": [], "text": "", "offset": 0, "done": True}
    numbers = [int(a["attempt"]) for a in tries]
    chosen = next((a for a in tries if a["attempt"] == attempt), tries[-1])
    path = Path(chosen["log_path"] or "")
    text, size, skipped = "", 0, 0
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:
        inside = False
    if chosen["log_path"] and inside and path.is_file():
        size = path.stat().st_size
        tail = offset < 0
        start = max(0, size - LOG_TAIL) if tail else min(offset, size)
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(LOG_CHUNK)
        offset = start + len(data)
        text = data.decode("utf-8", errors="replace")
        skipped = start if tail else 0
    else:
        offset, skipped = 0, 0
    return {
        "attempt": int(chosen["attempt"]),
        "attempts": numbers,
        "status": chosen["status"],
        "text": text,
        "offset": offset,
        "size": size,
        "skipped": skipped,
        "done": chosen["status"] != "RUNNING",
        "newer": any(n > int(chosen["attempt"]) for n in numbers),
    }
