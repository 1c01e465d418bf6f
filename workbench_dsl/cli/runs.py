"""``workbench runs``: list, show, logs, resume and cancel local runs (the run store)."""

from __future__ import annotations

import codecs
import json
import os
import signal
import socket
import sys
import time
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json
from workbench_dsl.errors import UsageError

ORDER = 30

runs_app = typer.Typer(
    name="runs",
    help="Local runs: list, show, logs, resume, cancel, compare, replay.",
    no_args_is_help=True,
)


def run_status(row: Any) -> str:
    """The run's status; a RUNNING run whose engine is gone shows as INTERRUPTED."""
    from workbench_dsl.engine.run_view import run_status as status_of

    return status_of(row)


def _store() -> Any:
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import local_root

    return RunStore(local_root().ensure().runs_db)


def _iso(ts: float | None) -> str | None:
    from workbench_dsl.engine.run_view import iso

    return iso(ts)


def _duration(row: Any) -> float | None:
    from workbench_dsl.engine.run_view import run_duration

    return run_duration(row)


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    return f"{m}m{sec:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


@handle_errors
def list_command(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs (newest first)."),
    experiment: str | None = typer.Option(
        None, "--experiment", metavar="NAME", help="Only the runs of this experiment."
    ),
) -> None:
    """List local runs, newest first."""
    store = _store()
    rows = store.query_runs(experiment=experiment, limit=limit)
    items = [
        {
            "run_id": r["run_id"],
            "pipeline": r["pipeline"],
            "experiment": r["experiment"],
            "status": run_status(r),
            "created_at": _iso(r["created_at"]),
            "duration_s": _duration(r),
            "cost": round(float(r["cost"] or 0.0), 6),
            "error": r["error"],
        }
        for r in rows
    ]
    if json_out:
        print_json(items)
        return
    if not items:
        typer.echo("no runs yet (start one with: workbench run PIPELINE)")
        return
    _table(
        ["RUN", "PIPELINE", "EXPERIMENT", "STATUS", "STARTED", "DURATION", "COST"],
        [
            [
                i["run_id"],
                i["pipeline"],
                i["experiment"],
                i["status"],
                (i["created_at"] or "").replace("T", " "),
                _fmt_duration(i["duration_s"]),
                f"${i['cost']:.4f}" if i["cost"] else "-",
            ]
            for i in items
        ],
    )


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@handle_errors
def show_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id or a unique prefix of one."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    limit: int = typer.Option(
        200, "--limit", "-n", min=1, help="How many tasks to list (in the order they started)."
    ),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many tasks first."),
    all_tasks: bool = typer.Option(False, "--all", help="List every task, however many."),
) -> None:
    """Show a run: its tasks, attempts, cache hits, durations, cost, errors and logs.

    A big run's tasks are listed a page at a time (--limit, --offset, --all); the
    counts cover all of them.
    """
    from workbench_dsl.engine.run_queries import tasks_in_status
    from workbench_dsl.engine.run_view import run_details, task_view

    store = _store()
    row = store.find_run(run)
    d = run_details(store, row, limit=None if all_tasks else limit, offset=offset)
    if json_out:
        print_json(d)
        return
    typer.echo(
        f"run {d['run_id']}  pipeline {d['pipeline']}  experiment {d['experiment']}  {d['status']}"
    )
    typer.echo(
        f"started {(d['created_at'] or '').replace('T', ' ')}  duration "
        f"{_fmt_duration(d['duration_s'])}  cost ${d['cost']:.4f}"
    )
    if d["parameters"]:
        typer.echo(
            "parameters: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in d["parameters"].items())
        )
    rows = []
    for t in d["tasks"]:
        how = "cached" if t["cached"] else ("earlier" if t["reused"] else "")
        note = t["error"] or t["status_line"] or ""
        rows.append(
            [
                t["name"],
                t["status"],
                how,
                str(t["attempts"]),
                _fmt_duration(t["duration_s"]) if t["attempts"] else "-",
                f"${t['cost']:.4f}" if t["cost"] else "-",
                note[:100],
            ]
        )
    if rows:
        _table(["TASK", "STATUS", "CACHE", "ATTEMPTS", "DURATION", "COST", "NOTE"], rows)
    if d["outputs"]:
        typer.echo("outputs:")
        for k, v in d["outputs"].items():
            shown = v.get("uri") if isinstance(v, dict) and "uri" in v else json.dumps(v)
            typer.echo(f"  {k} = {shown}")
    shown = len(d["tasks"])
    if shown < d["tasks_total"]:
        counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(d["task_counts"].items()) if n)
        last = offset + shown
        if shown == 0:  # --offset at or past the end
            typer.echo(
                f"no tasks from --offset {offset}: the run has {d['tasks_total']} ({counts});"
                " give a smaller --offset, or --all"
            )
        elif last < d["tasks_total"]:
            typer.echo(
                f"tasks {offset + 1}-{last} of {d['tasks_total']} ({counts});"
                f" more with --offset {last}, or --all"
            )
        else:
            typer.echo(
                f"tasks {offset + 1}-{last} of {d['tasks_total']} ({counts});"
                " the first ones with a smaller --offset, or --all"
            )
    failed = [
        task_view(t, False) for t in tasks_in_status(store.conn, d["run_id"], ("FAILED",), 20)
    ]
    for t in failed:
        typer.echo(f"✗ {t['name']}: {t['error']}")
        if t["log_path"]:
            typer.echo(f"  log: {t['log_path']}")


def _task_matches(store: Any, run_id: str, task: str) -> list[str]:
    from workbench_dsl.engine.run_queries import task_names

    names = task_names(store.conn, run_id, ("container", "stub"))
    if task in names:
        return [task]
    found = [n for n in names if n.startswith(task) or n.rsplit("/", 1)[-1] == task]
    if not found:
        raise UsageError(f"run {run_id} has no task {task!r} (tasks: {', '.join(names[:10])})")
    return found


_LOG_CHUNK = 1 << 20


@handle_errors
def logs_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id or a unique prefix of one."),
    task: str | None = typer.Argument(None, metavar="[TASK]", help="Only this task's logs."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing while the run goes on."
    ),
) -> None:
    """Print the logs of a run's tasks (every attempt, in the order they started)."""
    store = _store()
    row = store.find_run(run)
    run_id = row["run_id"]
    wanted = set(_task_matches(store, run_id, task)) if task else None
    printed: dict[str, int] = {}
    decoders: dict[str, codecs.IncrementalDecoder] = {}
    last_header: list[str | None] = [None]
    gone: set[str] = set()  # log files the store names that are not there (deleted since)

    def emit_new() -> None:
        for a in store.attempts(run_id):
            if wanted is not None and a["task"] not in wanted:
                continue
            path = a["log_path"]
            if not path:
                continue
            try:
                f = open(path, "rb")  # noqa: SIM115 - read in chunks below
            except OSError:
                gone.add(path)
                continue
            gone.discard(path)
            with f:
                f.seek(printed.get(path, 0))
                # In chunks, never the whole file: a log may be as large as its cap.
                while data := f.read(_LOG_CHUNK):
                    header = f"==> {a['task']} (attempt {a['attempt']}) <=="
                    if last_header[0] != header:
                        sys.stdout.write(("\n" if last_header[0] else "") + header + "\n")
                        last_header[0] = header
                    decoder = decoders.setdefault(
                        path, codecs.getincrementaldecoder("utf-8")(errors="replace")
                    )
                    sys.stdout.write(decoder.decode(data))
                    printed[path] = printed.get(path, 0) + len(data)
                sys.stdout.flush()

    emit_new()
    if not follow:
        if not printed:
            typer.echo(_no_logs_line(run_status(store.get_run(run_id) or row), gone), err=True)
        return
    try:
        while True:
            current = store.get_run(run_id)
            done = current is None or run_status(current) != "RUNNING"
            time.sleep(0.3)
            emit_new()
            if done:
                break
    except KeyboardInterrupt:
        pass


@handle_errors
def resume_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id or a unique prefix of one."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object with the result."),
    max_parallel: int | None = typer.Option(
        None, "--max-parallel", metavar="N", help="Most tasks running at once."
    ),
) -> None:
    """Finish a stopped run (killed, cancelled or failed); completed tasks are not run again."""
    from workbench_dsl.cli.run import exit_code, print_summary, summary_json
    from workbench_dsl.engine import execute, progress

    if max_parallel is not None and max_parallel < 1:
        raise UsageError("--max-parallel must be 1 or more")
    view = progress.for_terminal(json_out)
    try:
        summary = execute.resume(run, max_parallel=max_parallel, observers=[view])
    finally:
        stop = getattr(view, "stop", None)
        if stop is not None:
            stop()
    if json_out:
        print_json(summary_json(summary))
    else:
        print_summary(summary)
    raise typer.Exit(exit_code(summary.status))


@handle_errors
def cancel_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id or a unique prefix of one."),
    wait: float = typer.Option(
        30.0, "--wait", min=0, help="Seconds to wait for the engine to stop."
    ),
) -> None:
    """Cancel a running run: its tasks are stopped and it can be resumed later."""
    store = _store()
    row = store.find_run(run)
    run_id = row["run_id"]
    status = run_status(row)
    if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
        typer.echo(f"run {run_id} already ended ({status})", err=True)
        return
    if status == "RUNNING" and row["host"] != socket.gethostname():
        raise UsageError(f"run {run_id} runs on host {row['host']}; cancel it there")
    if status == "RUNNING":
        try:
            os.kill(int(row["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            status = "INTERRUPTED"
        else:
            deadline = time.time() + wait
            while time.time() < deadline:
                current = store.get_run(run_id)
                if current is not None and current["status"] != "RUNNING":
                    typer.echo(f"run {run_id} {current['status']}", err=True)
                    return
                time.sleep(0.1)
            raise UsageError(
                f"run {run_id}: the engine (pid {row['pid']}) did not stop in {wait:g}s"
            )
    # The engine is gone (killed): mark what it left behind.
    store.cancel_abandoned(run_id)
    typer.echo(f"run {run_id} CANCELLED (its engine had already stopped)", err=True)


runs_app.command("list")(list_command)
runs_app.command("show")(show_command)
runs_app.command("logs")(logs_command)
runs_app.command("resume")(resume_command)
runs_app.command("cancel")(cancel_command)
# Reading runs as data (compare, replay) lives in modules of its own.
from workbench_dsl.cli import runs_compare, runs_replay  # noqa: E402

runs_compare.attach(runs_app)
runs_replay.attach(runs_app)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


def _no_logs_line(status: str, gone: set[str]) -> str:
    """What to say when a run has printed no log at all."""
    if gone:
        example = sorted(gone)[0]
        return (
            f"(no logs: {len(gone)} log file(s) of this run are gone, e.g. {example}; "
            "they were deleted from the local root)"
        )
    return "(no logs yet)" if status == "RUNNING" else "(no logs: its tasks wrote none)"
