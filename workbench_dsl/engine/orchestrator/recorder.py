"""The recorder: the only writer of the run store during a run, mirroring each transition.

Every state change of a task reaches :meth:`Recorder.mirror`, which marks the
task dirty; the loop calls :meth:`Recorder.flush` when its queue is empty, and
the rows of every dirty task, as they are then, are written in one transaction
(a burst of a thousand cache hits is one commit, and a task that passed through
three states is written once). What must be durable at once is written at once,
each in one transaction: an attempt's start (so ``runs show`` in another process
sees the running task and its status file), its failure, and its outputs together
with the task row and the cache entry (a SIGKILL leaves all of it or none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench_dsl.engine import graph
from workbench_dsl.engine.graph import Node
from workbench_dsl.engine.orchestrator.states import TaskState
from workbench_dsl.engine.spec import caching_enabled
from workbench_dsl.engine.store import RunStore


class Recorder:
    """Mirrors one run's task states into the run store."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.nodes: dict[str, Node] = {}  # every task that is a node, by qualified name
        self.rows: dict[str, dict[str, Any]] = {}  # rows that are no node (iterations...)
        self._dirty: set[str] = set()
        self._hits: list[str] = []  # cache keys hit since the last flush
        self.status_files: dict[str, Path] = {}  # read by the status watcher's thread too

    # -- rows ------------------------------------------------------------------------------

    def row(self, node: Node, status: str | None = None) -> dict[str, Any]:
        """A task's columns in the ``tasks`` table, as its state is now."""
        status = status or node.status
        duration = node.duration_s
        row: dict[str, Any] = {
            "seq": node.seq,
            "parent": node.scope.qname or None,
            "kind": node.kind,
            "component": node.comp_name,
            "executor": node.component.get("executorLabel"),
            "status": status,
            "cached": node.cached,
            "reused": node.reused,
            "attempts": node.attempts,
            "started_at": node.started,
            "finished_at": node.finished if status in graph.TERMINAL else None,
            "duration_s": round(duration, 6),
            "cost_per_hour": node.cost_per_hour,
            "cost": round(duration * node.cost_per_hour / 3600.0, 8),
            "error": node.error
            if status in (graph.FAILED, graph.CANCELLED)
            else (node.reason if status in (graph.SKIPPED, graph.NOT_RUN) else None),
            "log_path": node.log_path,
            "input_key": node.key,
            "cache_key": node.key if caching_enabled(node.task) else None,
        }
        if node.is_executor and node.state not in (TaskState.PENDING, TaskState.VERIFYING):
            row["inputs_json"] = {"parameters": node.params, "artifacts": node.artifacts}
        if node.is_executor and status == graph.SUCCEEDED:
            row["outputs_json"] = {"parameters": node.out_params, "artifacts": node.out_artifacts}
        status_file = self.status_files.get(node.qname)
        if status_file is not None:
            row["status_file"] = str(status_file)
        return row

    def mirror(self, node: Node, *, persisted: bool = False) -> None:
        """A task changed state: its row follows (``persisted``: already written in full)."""
        self.nodes[node.qname] = node
        if persisted:
            self._dirty.discard(node.qname)
        else:
            self._dirty.add(node.qname)

    def group_row(self, qname: str, kind: str, status: str, seq: int, **extra: Any) -> None:
        """A row that is no node of its own: a loop iteration, a task inside a skipped DAG."""
        rec = self.rows.get(qname)
        if rec is None:
            rec = self.rows[qname] = {"seq": seq}
        rec.update(kind=kind, status=status, **extra)
        self._dirty.add(qname)

    def summary_rows(self) -> list[dict[str, Any]]:
        """Every task as the run ends, with the columns the run's summary reads.

        Those columns as :meth:`row` has them, without building every other one.
        """
        out = []
        for q, n in self.nodes.items():
            duration = round(n.duration_s, 6)
            out.append(
                {
                    "task": q,
                    "seq": n.seq,
                    "kind": n.kind,
                    "status": n.state.stored,
                    "cached": n.cached,
                    "attempts": n.attempts,
                    "started_at": n.started,
                    "duration_s": duration,
                    "cost": round(duration * n.cost_per_hour / 3600.0, 8),
                }
            )
        out += [dict(r, task=q) for q, r in self.rows.items() if q not in self.nodes]
        return out

    # -- what is written at once ----------------------------------------------------------------

    def attempt_started(self, node: Node, attempt: int, log: Path, workdir: Path) -> None:
        self.store.start_attempt(
            self.run_id, node.qname, attempt, str(log), str(workdir), self.row(node)
        )
        self._dirty.discard(node.qname)  # the attempt's row above is newer

    def attempt_failed(
        self, node: Node, attempt: int, status: str, duration_s: float, exit_code: int | None
    ) -> None:
        self.store.finish_attempt(
            self.run_id,
            node.qname,
            attempt,
            status,
            duration_s,
            exit_code,
            node.error,
            task_fields={"error": node.error, "duration_s": node.duration_s},
        )

    def outputs_committed(
        self,
        node: Node,
        attempt: int,
        duration_s: float,
        exit_code: int | None,
        status_line: str | None,
        cache_entry: dict[str, Any] | None,
    ) -> None:
        """An attempt's outputs, its task row and its cache entry, in one transaction."""
        row = self.row(node, graph.SUCCEEDED)
        row["status_line"] = status_line
        flat = [dict(a, name=a.get("name") or k) for k, v in node.out_artifacts.items() for a in v]
        self.store.finish_attempt(
            self.run_id,
            node.qname,
            attempt,
            "SUCCEEDED",
            duration_s,
            exit_code,
            None,
            task_fields=row,
            artifacts=flat,
            cache_entry=cache_entry,
        )

    def cache_hit(self, key: str) -> None:
        self._hits.append(key)  # counted at the next flush, with the rows

    def cache_drop(self, key: str) -> None:
        self.store.cache_drop(key)

    def flush(self) -> None:
        """Write every row changed since the last flush, and the cache hits, in one transaction."""
        if not self._dirty and not self._hits:
            return
        rows = []
        for qname in self._dirty:
            node = self.nodes.get(qname)
            rows.append((qname, self.row(node) if node is not None else self.rows[qname]))
        self._dirty.clear()
        hits, self._hits = self._hits, []
        self.store.record_batch(self.run_id, rows, hits)

    def fail_unfinished(self, error: str) -> None:
        """Mark every row that is no node and still pending or running as failed."""
        for qname, r in self.rows.items():
            if r["status"] in (graph.PENDING, graph.RUNNING):
                r["status"], r["error"] = graph.FAILED, error
                self._dirty.add(qname)
