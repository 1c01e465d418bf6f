"""Local sweeper: an Optuna study in a journal file, trials in ``parallel_trials`` worker processes.

The study lives in an Optuna journal file (safe across processes) under the
run's directory, so a resumed run loads it and continues: finished trials
count, trials cut off by the interruption are recorded as failed-and-
interrupted and their parameters tried again. This process asks the sampler
for parameters (so TPE's constant liar sees the trials in flight) and hands
each trial to one of ``parallel_trials`` forked worker processes; a worker
that dies fails its trial and is replaced. Workers report intermediate values
straight to the journal (``report``), where the pruner reads them. Every line a
trial prints reaches the step's log as ``[trial N] ...``.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, Any

from workbench_dsl.backends.sweeper import algorithms
from workbench_dsl.backends.sweeper.base import (
    RunTrial,
    SweepFailed,
    SweepResult,
    SweepSettings,
    TrialPruned,
    TrialRecord,
    objective_value,
)
from workbench_dsl.backends.trainer._process import die_with_parent, sigterm_raises

#: Env var: where a trial's ``report()`` sends intermediate values (JSON).
CONTEXT = "WORKBENCH_SWEEP_CONTEXT"


def _open_storage(journal: str) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(journal))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        with contextlib.suppress(Exception):
            return item()
    return str(value)


def _record(storage: Any, trial_id: int, **attrs: Any) -> None:
    """Store what we know of a trial in one journal write (each write takes the file lock)."""
    storage.set_trial_user_attr(trial_id, "workbench", attrs)


def _attrs(trial: Any) -> dict[str, Any]:
    return dict(trial.user_attrs.get("workbench") or {})


# -- the worker side ----------------------------------------------------------------------

_STUDY_CACHE: dict[tuple[str, str], tuple[Any, SweepSettings]] = {}


def report_intermediate(step: int, metrics: dict[str, float]) -> None:
    """Record one intermediate value of the running trial; raise :class:`TrialPruned` to stop it.

    Only the objective feeds early stopping (Optuna studies have one value).
    """
    ctx = json.loads(os.environ[CONTEXT])
    objective = ctx["objective"]
    if objective not in metrics:
        return
    import optuna

    key = (ctx["journal"], ctx["study"])
    cached = _STUDY_CACHE.get(key)
    if cached is None:
        settings = SweepSettings.from_json(ctx["settings"])
        study = optuna.load_study(
            study_name=ctx["study"],
            storage=_open_storage(ctx["journal"]),
            sampler=optuna.samplers.RandomSampler(),
            pruner=algorithms.pruner(settings),
        )
        cached = _STUDY_CACHE[key] = (study, settings)
    study, settings = cached
    trial = optuna.Trial(study, int(ctx["trial_id"]))
    trial.report(float(metrics[objective]), int(step))
    if trial.should_prune():
        es = settings.early_stopping
        rule = es.algorithm if es else "early stopping"
        raise TrialPruned(f"stopped early by {rule} at step {step}")


def _worker(
    conn: Connection, out_fd: int, parent: int, run_trial: RunTrial, objective: str
) -> None:
    die_with_parent(parent)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    # Fresh stream objects: the parent's may have been mid-write (locked) at fork.
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        number, params, context = msg
        os.environ[CONTEXT] = context
        record = TrialRecord(number=number, name=f"trial-{number}", state="running", params=params)
        start = time.perf_counter()
        reply: tuple[str, float | None, dict[str, Any], str | None]
        try:
            metrics = run_trial(params, record)
            value = objective_value(metrics, objective)
            reply = ("succeeded", value, {str(k): _plain(v) for k, v in metrics.items()}, None)
        except TrialPruned as e:
            reply = ("pruned", None, {}, str(e))
        except Exception as e:
            if type(e).__name__ == "TrialPruned":  # optuna's own, raised by user code
                reply = ("pruned", None, {}, str(e))
            else:
                traceback.print_exc()
                reply = ("failed", None, {}, f"{type(e).__name__}: {e}")
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send((*reply, time.perf_counter() - start, record.model_uri))


class _Slot:
    """One worker process, its result pipe and its output pipe."""

    def __init__(self, ctx: Any, run_trial: RunTrial, objective: str) -> None:
        parent_conn, child_conn = ctx.Pipe()
        out_r, out_w = os.pipe()
        self.process = ctx.Process(
            target=_worker,
            args=(child_conn, out_w, os.getpid(), run_trial, objective),
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        os.close(out_w)
        os.set_blocking(out_r, False)
        self.conn: Connection = parent_conn
        self.out = out_r
        self.buffer = b""
        self.trial: Any = None  # the optuna Trial in flight
        self.started = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(OSError):
            os.close(self.out)


class OptunaSweeper:
    """Runs a sweep as an Optuna study stored in ``journal``.

    Args:
        journal: The study's journal file (under the run's directory).
        study_name: The study's name in the journal.
        out: Where trial output and progress lines go (default stdout).
        status: Called with one line of progress after every trial.
    """

    def __init__(
        self,
        *,
        journal: Path,
        study_name: str,
        out: IO[str] | None = None,
        status: Callable[[str], None] | None = None,
    ) -> None:
        self.journal = Path(journal)
        self.study_name = study_name
        self.out = out
        self.status = status

    # -- driving the study --------------------------------------------------------------

    def run(
        self,
        settings: SweepSettings,
        run_trial: RunTrial,
        *,
        name: str | None = None,
        step: str | None = None,
        owner: dict[str, str] | None = None,
    ) -> SweepResult:
        """Run trials until ``max_trials`` have finished; return the best and every trial.

        ``name``, ``step`` and ``owner`` name a cluster object; the study is in its journal.
        """
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = algorithms.sampler(settings)  # a missing package fails before any trial
        pruner = algorithms.pruner(settings)
        distributions = {p.name: algorithms.distribution(p) for p in settings.params}
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        storage = _open_storage(str(self.journal))
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="maximize" if settings.goal == "maximize" else "minimize",
            load_if_exists=True,
        )
        self._recover(study, storage)
        out = self.out or sys.stdout
        total = settings.total_trials()
        done = self._finished(study)
        if done:
            out.write(f"continuing the study: {len(done)} of {total} trials already finished\n")
        failed = sum(1 for t in done if t.state == TrialState.FAIL)
        last_error = next(
            (_attrs(t).get("error") for t in reversed(done) if t.state == TrialState.FAIL), None
        )
        context_base = {
            "journal": str(self.journal),
            "study": self.study_name,
            "objective": settings.objective,
            "settings": settings.to_json(),
        }
        ctx = multiprocessing.get_context("fork")
        slots: list[_Slot] = []
        started = len(done)
        with sigterm_raises():
            try:
                while True:
                    if self._too_many_failures(settings, failed):
                        raise SweepFailed(
                            f"{failed} trials failed, more than max_failed_trials="
                            f"{settings.max_failed_trials}; last error: {last_error}"
                        )
                    running = [s for s in slots if s.trial is not None]
                    while started < total and len(running) < settings.parallel_trials:
                        slot = next((s for s in slots if s.trial is None), None)
                        if slot is None:
                            slot = _Slot(ctx, run_trial, settings.objective)
                            slots.append(slot)
                        trial = study.ask(distributions)
                        context = json.dumps({**context_base, "trial_id": trial._trial_id})
                        slot.trial = trial
                        slot.started = time.perf_counter()
                        slot.conn.send((trial.number, dict(trial.params), context))
                        started += 1
                        running.append(slot)
                    if not running:
                        break
                    failed_now, error = self._wait(study, storage, slots, settings, out, total)
                    if failed_now:
                        failed += failed_now
                        last_error = error
            except SweepFailed:
                # Trials still running did not fail themselves: not counted as failures.
                for s in slots:
                    if s.trial is not None:
                        _record(storage, s.trial._trial_id, interrupted=True, error="stopped")
                        with contextlib.suppress(Exception):
                            study.tell(s.trial, state=TrialState.FAIL)
                raise
            # On a cancel (Terminated) the running trials are left RUNNING in the journal,
            # as after a crash: a resumed run records them interrupted and runs them again.
            finally:
                for s in slots:
                    with contextlib.suppress(Exception):
                        s.conn.send(None)
                for s in slots:
                    s.process.join(timeout=0.5)
                    if s.process.is_alive():
                        s.process.kill()
                        s.process.join(timeout=2)
                    self._drain(s, out, final=True)
                    s.close()
        return self._result(study, settings)

    @staticmethod
    def _too_many_failures(settings: SweepSettings, failed: int) -> bool:
        return settings.max_failed_trials is not None and failed > settings.max_failed_trials

    @staticmethod
    def _finished(study: Any) -> list[Any]:
        from optuna.trial import TrialState

        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state in finished and not _attrs(t).get("interrupted")
        ]

    @staticmethod
    def _recover(study: Any, storage: Any) -> None:
        """Trials a previous attempt left running: record them interrupted, queue them again."""
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            _record(storage, t._trial_id, interrupted=True, error="interrupted; tried again")
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            study.enqueue_trial(dict(t.params), skip_if_exists=False)

    def _wait(
        self,
        study: Any,
        storage: Any,
        slots: list[_Slot],
        settings: SweepSettings,
        out: IO[str],
        total: int,
    ) -> tuple[int, str | None]:
        """Wait for any trial to end (reading output meanwhile); record it. Returns failures."""
        from optuna.trial import TrialState

        by_conn = {s.conn: s for s in slots}
        by_sentinel = {s.process.sentinel: s for s in slots}
        by_out = {s.out: s for s in slots}
        ready = wait([*by_conn, *by_sentinel, *by_out], timeout=1.0)
        failed = 0
        error: str | None = None
        for obj in ready:
            if obj in by_out:
                self._drain(by_out[obj], out)
        for obj in ready:
            slot = by_conn.get(obj)  # type: ignore[call-overload]
            dead = by_sentinel.get(obj)  # type: ignore[call-overload]
            if slot is not None and slot.trial is not None:
                try:
                    state, value, metrics, err, duration, model_uri = slot.conn.recv()
                except (EOFError, OSError):
                    continue  # its sentinel reports the death
                self._drain(slot, out)
                trial = slot.trial
                slot.trial = None
                attrs = {"metrics": settings.recorded(metrics), "duration_s": round(duration, 3)}
                if model_uri:
                    attrs["model_uri"] = model_uri
                if err:
                    attrs["error"] = err
                _record(storage, trial._trial_id, **attrs)
                if state == "succeeded":
                    study.tell(trial, value)
                elif state == "pruned":
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    study.tell(trial, state=TrialState.FAIL)
                    failed += 1
                    error = err
                self._progress(study, settings, total, out, trial.number, state, value, err)
            elif dead is not None and not dead.process.is_alive():
                self._drain(dead, out, final=True)
                if dead.trial is not None:
                    code = dead.process.exitcode
                    err = f"the trial's process died (exit code {code})"
                    _record(
                        storage,
                        dead.trial._trial_id,
                        error=err,
                        duration_s=round(time.perf_counter() - dead.started, 3),
                    )
                    study.tell(dead.trial, state=TrialState.FAIL)
                    self._progress(
                        study, settings, total, out, dead.trial.number, "failed", None, err
                    )
                    failed += 1
                    error = err
                    dead.trial = None
                dead.close()
                slots.remove(dead)
        return failed, error

    def _drain(self, slot: _Slot, out: IO[str], final: bool = False) -> None:
        while True:
            try:
                data = os.read(slot.out, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            slot.buffer += data
        *lines, slot.buffer = slot.buffer.split(b"\n")
        if final and slot.buffer:
            lines.append(slot.buffer)
            slot.buffer = b""
        label = f"[trial {slot.trial.number}] " if slot.trial is not None else "[trial] "
        for line in lines:
            out.write(label + line.decode("utf-8", "replace") + "\n")
        if lines:
            out.flush()

    def _progress(
        self,
        study: Any,
        settings: SweepSettings,
        total: int,
        out: IO[str],
        number: int,
        state: str,
        value: float | None,
        err: str | None,
    ) -> None:
        """One log line per finished trial, and the step's status line."""
        finished = self._finished(study)
        best = self._best(finished, settings)
        status = f"trial {len(finished)}/{total}"
        if best is not None:
            status += f", best {settings.objective} {best.value:.4g}"
        if self.status:
            self.status(status)
        what = f"{settings.objective}={value:.6g}" if state == "succeeded" else err
        out.write(f"trial {number} {state}: {what} ({status})\n")
        out.flush()

    @staticmethod
    def _best(trials: list[Any], settings: SweepSettings) -> Any:
        from optuna.trial import TrialState

        best = None
        for t in trials:
            if t.state != TrialState.COMPLETE or t.value is None:
                continue
            if best is None or settings.better(t.value, best.value):
                best = t
        return best

    def _result(self, study: Any, settings: SweepSettings) -> SweepResult:
        from optuna.trial import TrialState

        states = {
            TrialState.COMPLETE: "succeeded",
            TrialState.PRUNED: "pruned",
            TrialState.FAIL: "failed",
        }
        records = []
        for t in study.get_trials(deepcopy=False):
            attrs = _attrs(t)
            records.append(
                TrialRecord(
                    number=t.number,
                    name=f"trial-{t.number}",
                    state=states.get(t.state, "running"),
                    params=dict(t.params),
                    value=t.value if t.state == TrialState.COMPLETE else None,
                    metrics=dict(attrs.get("metrics") or {}),
                    duration_s=attrs.get("duration_s"),
                    error=attrs.get("error"),
                    model_uri=attrs.get("model_uri"),
                )
            )
        best = self._best(self._finished(study), settings)
        if best is None:
            first = next((r.error for r in records if r.state == "failed" and r.error), None)
            raise SweepFailed("no trial succeeded" + (f"; first failure: {first}" if first else ""))
        best_record = next(r for r in records if r.number == best.number)
        return SweepResult(best=best_record, trials=records)
