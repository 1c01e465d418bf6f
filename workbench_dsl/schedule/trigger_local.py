"""The local scheduler's trigger pass: finds events, claims each once, starts its run.

:class:`~workbench_dsl.schedule.local.LocalScheduler` calls :meth:`TriggerPass.run_once`
on every pass, after the schedules. For each trigger that is not paused it

* ``dataset:GLOB``: hashes the matching files (only those whose size or mtime moved since
  the last look) and claims one event per file whose content digest differs from the one
  recorded; with ``--max-age`` it instead claims one event per stale period (no digest
  changed for longer than the limit);
* ``run:PIPELINE[:STATUS]``: reads that pipeline's finished runs through the run store's
  own query and claims one event per run;
* ``drift:ENDPOINT``: compares the endpoint's logged requests with its model's training
  data (a cached report: recomputed only when the log changed) and claims one event per
  drift *episode*: the first pass that finds the endpoint drifted fires; later passes
  that still find it drifted do not; a pass that finds it back within its thresholds
  (or serving another revision) ends the episode, and the next crossing fires again.

More new events than ``max_catchup`` (the scheduler was down, a folder was refilled) are
bounded: the newest ``max_catchup`` run, the older ones are recorded as ``SKIPPED``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from workbench_dsl import _procs
from workbench_dsl.paths import LocalRoot
from workbench_dsl.schedule.events import DatasetEvent, DriftEvent, RunEvent
from workbench_dsl.schedule.local import (
    PassReport,
    claimed_run_state,
    run_env,
    run_outcome,
    start_run,
)
from workbench_dsl.schedule.trigger_store import FileSeen, Trigger, TriggerStore

#: Starts one run: (trigger, params, stdout file, log file, env) -> the process.
TriggerLauncher = Callable[
    [Trigger, dict[str, str], Path, Path, dict[str, str]], "subprocess.Popen[bytes]"
]

#: Files one dataset: trigger may watch; more is an error on that trigger (narrow the glob).
MAX_FILES = 10_000
#: Runs of the upstream pipeline a run: trigger looks at per pass (newest first).
RUN_WINDOW = 200


def default_trigger_launcher(
    t: Trigger, params: dict[str, str], out: Path, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return start_run(t.pipeline, params, t.experiment, t.workdir, out, log, env)


def scan_files(t: Trigger, event: DatasetEvent, known: dict[str, object]) -> list[FileSeen]:
    """The regular files matching the trigger's glob (symlinks are not followed), hashed
    only when their size or mtime differ from ``known``'s record."""
    matched = sorted(glob.glob(event.pattern, root_dir=t.workdir, recursive=True))
    if len(matched) > MAX_FILES:
        raise ValueError(
            f"{event} matches {len(matched)} files (at most {MAX_FILES}): narrow the glob"
        )
    seen = []
    for rel in matched:
        path = Path(t.workdir) / rel
        try:
            st = os.lstat(path)
        except OSError:
            continue  # gone between the glob and the stat
        if not stat.S_ISREG(st.st_mode):
            continue
        row = known.get(rel)
        if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:  # type: ignore[index]
            digest = str(row["digest"])  # type: ignore[index]
        else:
            try:
                digest = _sha256(path)
            except OSError:
                continue  # still being written or removed: the next pass sees it
        seen.append(FileSeen(rel, digest, st.st_size, st.st_mtime_ns))
    return seen


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


class TriggerPass:
    """Evaluates the triggers of one local root (used by ``LocalScheduler``)."""

    def __init__(
        self,
        root: LocalRoot,
        store: TriggerStore,
        *,
        launcher: TriggerLauncher | None = None,
    ) -> None:
        self.root = root
        self.store = store
        self.launcher = launcher or default_trigger_launcher
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def run_once(self, now: float, report: PassReport) -> None:
        self._reap(report)
        for t in self.store.triggers():
            if t.paused:
                continue
            try:
                if isinstance(t.event, DatasetEvent):
                    self._dataset(t, t.event, now, report)
                elif isinstance(t.event, RunEvent):
                    self._run(t, t.event, report)
                elif isinstance(t.event, DriftEvent):
                    self._drift(t, t.event, report)
            except (OSError, ValueError) as e:
                report.errors.append(f"trigger {t.name}: {e}")
            self._prune(t)

    def busy(self) -> bool:
        return bool(self._children or self.store.active_firings())

    # -- events -------------------------------------------------------------------------

    def _dataset(self, t: Trigger, ev: DatasetEvent, now: float, report: PassReport) -> None:
        known = self.store.files(t.id)
        seen = scan_files(t, ev, known)  # type: ignore[arg-type]
        if t.max_age_s is not None:
            self.store.note_files(t.id, seen, now)
            files = self.store.files(t.id).values()
            last = max([float(r["changed_at"]) for r in files] + [t.after])
            if now - last > t.max_age_s:
                value = ev.pattern
                key = f"{t.id}@stale@{last:.3f}"
                self._claim_start(
                    t, key, f"{ev} not refreshed for {now - last:.0f}s", value, report
                )
            return
        same = [f for f in seen if f.path in known and known[f.path]["digest"] == f.digest]
        moved = [f for f in same if known[f.path]["mtime_ns"] != f.mtime_ns]
        if moved:
            self.store.note_files(t.id, moved, now)  # touched, same content: no event
        changed = sorted((f for f in seen if f not in same), key=lambda f: (f.mtime_ns, f.path))
        older, newest = changed[: -t.max_catchup], changed[-t.max_catchup :]
        for f in older:
            if self.store.skip_event(
                t,
                "",
                f"{ev}",
                self._abs(t, f.path),
                f"more than {t.max_catchup} changed files at once: only the newest run",
                file=f,
            ):
                report.skipped.append(f"trigger:{t.name}@{f.path}")
        for f in newest:
            if not self._claim_start(
                t,
                "",
                f"{ev} changed {f.path} ({f.digest[:19]})",
                self._abs(t, f.path),
                report,
                file=f,
            ):
                break

    def _run(self, t: Trigger, ev: RunEvent, report: PassReport) -> None:
        from workbench_dsl.engine.store import RunStore

        runs = RunStore(self.root.runs_db)
        try:
            rows = runs.query_runs(pipeline=ev.pipeline, limit=RUN_WINDOW)
        finally:
            runs.close()
        done = sorted(
            (
                r
                for r in rows
                if r["status"] in ev.statuses and r["finished_at"] and r["finished_at"] > t.after
            ),
            key=lambda r: (r["finished_at"], r["run_id"]),
        )
        keys = {r["run_id"]: f"{t.id}@run:{r['run_id']}" for r in done}
        known = self.store.known_keys(list(keys.values()))
        new = [r for r in done if keys[r["run_id"]] not in known]
        older, newest = new[: -t.max_catchup], new[-t.max_catchup :]
        for r in older:
            if self.store.skip_event(
                t,
                keys[r["run_id"]],
                f"{ev} run {r['run_id']} {r['status']}",
                r["run_id"],
                f"more than {t.max_catchup} runs finished at once: only the newest run",
            ):
                report.skipped.append(f"trigger:{t.name}@{r['run_id']}")
        for r in newest:
            event = f"{ev} run {r['run_id']} {r['status']}"
            if not self._claim_start(t, keys[r["run_id"]], event, r["run_id"], report):
                break

    def _drift(self, t: Trigger, ev: DriftEvent, report: PassReport) -> None:
        from workbench_dsl.backends.drift.report import TooFewRequests, cached_report
        from workbench_dsl.backends.drift.stats import Thresholds

        thresholds = Thresholds(ev.psi, ev.p_value, ev.features, ev.min_requests)
        result = cached_report(self.root, ev.endpoint, since_s=ev.window_s, thresholds=thresholds)
        if isinstance(result, TooFewRequests):
            return  # no verdict yet: wait for traffic
        if isinstance(result, Exception):
            raise ValueError(str(result))
        state = self.store.drift_state(t.id)
        rev = result.revision
        episode = int(state["episode"]) if state is not None else 0
        in_episode = state is not None and state["revision"] == rev and bool(state["drifted"])
        if not result.drifted:
            if in_episode:
                self.store.end_drift(t.id, rev, episode)
            return
        if in_episode:
            return  # the same episode: it fired when it began
        features = result.drifted_features
        inputs = {}
        for name, kind in t.event_inputs.items():
            if name == "endpoint":
                inputs[name] = ev.endpoint
            elif name == "drifted_features":
                inputs[name] = json.dumps(features) if kind == "LIST" else ",".join(features)
        self._claim_start(
            t,
            f"{t.id}@drift:{rev}#{episode + 1}",
            f"{ev} {rev}: {', '.join(features)} drifted (max psi {result.max_psi:.2f})",
            ev.endpoint,
            report,
            drift=(rev, episode + 1),
            inputs=inputs,
        )

    @staticmethod
    def _abs(t: Trigger, rel: str) -> str:
        return str((Path(t.workdir) / rel).resolve())

    # -- starting and reaping -----------------------------------------------------------

    def _claim_start(
        self,
        t: Trigger,
        key: str,
        event: str,
        value: str,
        report: PassReport,
        file: FileSeen | None = None,
        drift: tuple[str, int] | None = None,
        inputs: dict[str, str] | None = None,
    ) -> bool:
        """Claim and start one event; False when the trigger is at max_concurrency.

        ``inputs``: pipeline inputs the event fills (those not given with ``-p``)."""
        d = self.root.root / "triggers" / t.name
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = f"{time.time_ns()}-{hashlib.sha1((key or event).encode()).hexdigest()[:8]}"
        out, log = d / f"{stem}.json", d / f"{stem}.log"
        claim = self.store.claim_event(
            t, key, event, value, output=str(out), log=str(log), file=file, drift=drift
        )
        if claim == "taken":
            return True
        if claim == "busy":
            report.waiting.append(f"trigger:{t.name}@{event}")
            return False
        key = claim.split(":", 1)[1]
        params = {**(inputs or {}), **t.params}
        if t.event_param:
            params[t.event_param] = value
        env = run_env(
            self.root,
            t.pipeline,
            {
                "WORKBENCH_TRIGGER": t.name,
                "WORKBENCH_TRIGGER_EVENT": key,
                "WORKBENCH_TRIGGER_VALUE": value,
            },
        )
        try:
            proc = self.launcher(t, params, out, log, env)
        except Exception as e:
            self.store.set_firing(
                key, status="LOST", reason=f"could not start: {e}"[:300], finished_at=time.time()
            )
            report.finished.append((f"trigger:{t.name}@{event}", "LOST", None))
            return True
        self._children[key] = proc
        self.store.set_firing(
            key, status="RUNNING", pid=proc.pid, pid_start=_procs.start_time(proc.pid)
        )
        report.started.append(f"trigger:{t.name}@{event}")
        return True

    def _reap(self, report: PassReport) -> None:
        for row in self.store.active_firings():
            key = row["key"]
            label = f"trigger:{row['trigger']}@{row['event']}"
            state, code = claimed_run_state(self._children, row)
            if state == "running":
                continue
            if state == "lost":
                self.store.set_firing(
                    key,
                    status="LOST",
                    reason="the scheduler stopped before starting it",
                    finished_at=time.time(),
                )
                report.finished.append((label, "LOST", None))
                continue
            status, run_id, reason = run_outcome(row["output"], row["log"], code)
            self.store.set_firing(
                key, status=status, run_id=run_id, reason=reason, finished_at=time.time()
            )
            report.finished.append((label, status, run_id))

    def _prune(self, t: Trigger) -> None:
        for path in self.store.prune(t.id):
            try:
                os.unlink(path)
            except OSError:
                pass
