"""The local scheduler: starts each due tick of each schedule as its own ``workbench run``.

``workbench scheduler`` calls :meth:`LocalScheduler.run_once` in a loop. Each pass

1. looks at the runs it started (its own children, or -- after a restart -- any process
   whose pid and start time were recorded) and records how they ended;
2. for every schedule that is not paused, computes the ticks due since the last one
   handled; with catch-up off only the latest is kept and the others are recorded as
   skipped; each kept tick is *claimed* in SQLite (its idempotency key is unique and the
   claim counts the runs in flight against ``max_concurrency``) and only then started,
   as a separate process in its own session, so the scheduler never waits for a run and
   a Ctrl-C to the scheduler does not stop the runs.

A tick whose start failed, or whose scheduler died between claiming and starting it,
is recorded as ``LOST`` and never started again: a tick runs at most once. "now" comes
from ``clock``, so tests drive time by hand.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from workbench_dsl import _procs
from workbench_dsl.paths import LocalRoot, local_root
from workbench_dsl.schedule import cron
from workbench_dsl.schedule.store import Schedule, ScheduleStore

if TYPE_CHECKING:
    from workbench_dsl.schedule.trigger_local import TriggerLauncher

Clock = Callable[[], datetime]
#: Starts one run: (schedule, tick ISO, stdout file, log file, env) -> the process.
Launcher = Callable[[Schedule, str, Path, Path, dict[str, str]], "subprocess.Popen[bytes]"]

_STARTING_GRACE_S = 120.0


def claimed_run_state(
    children: dict[str, subprocess.Popen[bytes]], row: sqlite3.Row
) -> tuple[str, int | None]:
    """Where the run of a claimed tick or trigger firing stands.

    ``("running", None)``, ``("ended", code)`` (``code`` is None when another
    scheduler started it and only its pid is known), or ``("lost", None)``: no
    process was ever started for it and the grace period for starting is over.
    """
    proc = children.get(row["key"])
    if proc is not None:
        code = proc.poll()
        if code is None:
            return "running", None
        children.pop(row["key"], None)
        return "ended", code
    if row["pid"]:
        alive = _procs.alive(int(row["pid"]), row["pid_start"])
        return ("running", None) if alive else ("ended", None)
    if time.time() - float(row["created_at"]) < _STARTING_GRACE_S:
        return "running", None  # another scheduler is starting it right now
    return "lost", None


@dataclass
class PassReport:
    """What one pass did (for the scheduler's output and for tests)."""

    started: list[str] = field(default_factory=list)  # "<schedule>@<tick>"
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # due, held back by max_concurrency
    finished: list[tuple[str, str, str | None]] = field(default_factory=list)  # key, status, run
    errors: list[str] = field(default_factory=list)  # a trigger that could not be evaluated


def default_launcher(
    s: Schedule, tick: str, out: Path, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``workbench run PIPELINE -p ... --json`` in the schedule's directory, detached."""
    return start_run(s.pipeline, s.params, s.experiment, s.workdir, out, log, env)


def run_env(root: LocalRoot, pipeline: str, started_by: dict[str, str]) -> dict[str, str]:
    """The environment of a run the scheduler starts: the scheduler's own, the local root,
    ``started_by`` (the schedule's tick or the trigger's event) and, for a ``.py`` pipeline,
    its source file (which the run's lineage records)."""
    env = dict(os.environ)
    env.update({"WORKBENCH_HOME": str(root.root), **started_by})
    source = pipeline.split(":")[0]
    if source.endswith(".py"):
        env["WORKBENCH_PIPELINE_SOURCE"] = source
    return env


def start_run(
    pipeline: str,
    params: dict[str, str],
    experiment: str,
    workdir: str,
    out: Path,
    log: Path,
    env: dict[str, str],
) -> subprocess.Popen[bytes]:
    """Start ``workbench run PIPELINE -p ... --json`` in ``workdir``, in its own session."""
    cmd = [sys.executable, "-m", "workbench_dsl", "run", pipeline]
    for k, v in sorted(params.items()):
        cmd += ["-p", f"{k}={v}"]
    cmd += ["--experiment", experiment, "--json"]
    with open(out, "wb") as stdout, open(log, "ab") as stderr:
        return subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )


class LocalScheduler:
    """Starts due runs of the schedules in the local root's run store.

    Args:
        root: The local root (default: :func:`~workbench_dsl.paths.local_root`).
        clock: Returns "now" as an aware datetime (default: the system clock, UTC).
        launcher: Starts one run (default: :func:`default_launcher`).
    """

    def __init__(
        self,
        root: LocalRoot | None = None,
        *,
        clock: Clock | None = None,
        launcher: Launcher | None = None,
        trigger_launcher: TriggerLauncher | None = None,
    ) -> None:
        # trigger_local builds on this module (start_run, run_outcome): imported here.
        from workbench_dsl.schedule.trigger_local import TriggerPass
        from workbench_dsl.schedule.trigger_store import TriggerStore

        self.root = (root or local_root()).ensure()  # private, as every writer of the root
        self.store = ScheduleStore(self.root.runs_db)
        self.clock = clock or cron.now_utc
        self.launcher = launcher or default_launcher
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self.trigger_store = TriggerStore(self.root.runs_db)
        self.triggers = TriggerPass(self.root, self.trigger_store, launcher=trigger_launcher)

    def close(self) -> None:
        self.store.close()
        self.trigger_store.close()

    # -- one pass -----------------------------------------------------------------------

    def run_once(self) -> PassReport:
        report = PassReport()
        self._reap(report)
        now = self.clock()
        for s in self.store.all():
            if not s.paused:
                self._schedule_pass(s, now, report)
        self.triggers.run_once(now.timestamp(), report)
        return report

    def _schedule_pass(self, s: Schedule, now: datetime, report: PassReport) -> None:
        after = max(s.start_after, s.last_tick or "")
        due = [
            cron.iso(t) for t in cron.ticks_between(s.cron, s.timezone, cron.parse_iso(after), now)
        ]
        if not due:
            return
        if not s.catchup and len(due) > 1:
            self.store.skip(s, due[:-1], "catch-up is off: only the latest missed tick runs")
            report.skipped += [f"{s.name}@{t}" for t in due[:-1]]
            due = due[-1:]
        for tick in due:
            out, log = self._files(s, tick)
            claim = self.store.claim(s, tick, output=str(out), log=str(log))
            if claim == "taken":
                continue  # another scheduler (or an earlier pass) has it
            if claim == "busy":
                report.waiting.append(f"{s.name}@{tick}")
                break  # at max_concurrency: the rest waits for a free slot
            self._start(s, tick, out, log, report)

    def _files(self, s: Schedule, tick: str) -> tuple[Path, Path]:
        d = self.root.root / "schedules" / s.name
        d.mkdir(parents=True, exist_ok=True)
        stem = tick.replace(":", "")
        return d / f"{stem}.json", d / f"{stem}.log"

    def _start(self, s: Schedule, tick: str, out: Path, log: Path, report: PassReport) -> None:
        key = f"{s.id}@{tick}"
        env = run_env(
            self.root,
            s.pipeline,
            {
                "WORKBENCH_SCHEDULE": s.name,
                "WORKBENCH_SCHEDULE_TICK": key,
                # carried by the run's lineage as its nominal (scheduled) time
                "WORKBENCH_NOMINAL_TIME": tick,
            },
        )
        try:
            proc = self.launcher(s, tick, out, log, env)
        except Exception as e:
            self.store.set_tick(
                key, status="LOST", reason=f"could not start: {e}", finished_at=time.time()
            )
            report.finished.append((f"{s.name}@{tick}", "LOST", None))
            return
        self._children[key] = proc
        self.store.set_tick(
            key, status="RUNNING", pid=proc.pid, pid_start=_procs.start_time(proc.pid)
        )
        report.started.append(f"{s.name}@{tick}")

    def _reap(self, report: PassReport) -> None:
        for row in self.store.active_ticks():
            key = row["key"]
            state, code = claimed_run_state(self._children, row)
            if state == "running":
                continue
            if state == "lost":
                self.store.set_tick(
                    key,
                    status="LOST",
                    reason="the scheduler stopped before starting it",
                    finished_at=time.time(),
                )
                report.finished.append((f"{row['schedule']}@{row['tick']}", "LOST", None))
                continue
            status, run_id, reason = run_outcome(row["output"], row["log"], code)
            self.store.set_tick(
                key, status=status, run_id=run_id, reason=reason, finished_at=time.time()
            )
            report.finished.append((f"{row['schedule']}@{row['tick']}", status, run_id))

    # -- the loop -----------------------------------------------------------------------

    def serve(
        self,
        stop: threading.Event,
        *,
        poll: float = 30.0,
        say: Callable[[str], None] = print,
    ) -> None:
        """Run passes until ``stop`` is set; sleeps until the next tick (at most ``poll`` s)."""
        while not stop.is_set():
            report = self.run_once()
            for k in report.started:
                say(f"started {k}")
            for k in report.skipped:
                say(f"skipped {k} ({skip_reason(k)})")
            for k, status, run_id in report.finished:
                say(f"finished {k}: {status}" + (f" (run {run_id})" if run_id else ""))
            for line in report.errors:
                say(line)
            stop.wait(self._sleep(poll))

    def _sleep(self, poll: float) -> float:
        now = self.clock()
        wait = poll
        for s in self.store.all():
            if s.paused:
                continue
            nxt = cron.next_tick(s.cron, s.timezone, now)
            wait = min(wait, max(0.2, (nxt - now).total_seconds() + 0.05))
        if self._children or self.store.active_ticks() or self.triggers.busy():
            wait = min(wait, 2.0)  # notice runs ending promptly
        return wait


def skip_reason(label: str) -> str:
    """Why a pass skipped ``label`` (a schedule's tick or a trigger's event), in words."""
    return "beyond --max-catchup" if label.startswith("trigger:") else "catch-up is off"


def run_outcome(
    output: str | None, log: str | None, code: int | None
) -> tuple[str, str | None, str | None]:
    """(status, run id, reason) of a finished ``workbench run --json``."""
    data: dict[str, object] = {}
    if output:
        try:
            data = json.loads(Path(output).read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            data = {}
    run_id = str(data["run_id"]) if isinstance(data.get("run_id"), str) else None
    status = str(data["status"]) if isinstance(data.get("status"), str) else None
    if status is None:
        status = {0: "SUCCEEDED", 1: "FAILED"}.get(code if code is not None else -1, "ERROR")
    reason = None
    if status != "SUCCEEDED":
        reason = _last_line(log) or (f"exit code {code}" if code is not None else None)
    return str(status), run_id, reason


def _last_line(log: str | None) -> str | None:
    if not log:
        return None
    try:
        lines = [
            ln
            for ln in Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.strip()
        ]
    except OSError:
        return None
    return lines[-1][:300] if lines else None
