"""``workbench schedule`` (recurring runs, local or on KFP) and ``workbench scheduler``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from workbench_dsl.cli import _kfp
from workbench_dsl.cli._common import handle_errors, parse_params, print_done, print_json

if TYPE_CHECKING:
    from workbench_dsl.schedule.kfp import KfpSchedules
    from workbench_dsl.schedule.store import Schedule, ScheduleStore

ORDER = 60

app = typer.Typer(
    name="schedule",
    help="Recurring runs: cron schedules run by `workbench scheduler`, or KFP recurring runs.",
    no_args_is_help=True,
)

TARGET = typer.Option(
    "local", "--target", help="local (run by `workbench scheduler`) or kfp (a KFP recurring run)."
)
JSON = typer.Option(False, "--json", help="Print one JSON document.")


def _store() -> ScheduleStore:
    from workbench_dsl.paths import local_root
    from workbench_dsl.schedule.store import ScheduleStore

    return ScheduleStore(local_root().ensure().runs_db)


def _kfp_target(target: str, **opts: Any) -> KfpSchedules | None:
    from workbench_dsl.errors import UsageError

    if target == "local":
        return None
    if target != "kfp":
        raise UsageError(f"--target must be local or kfp (got {target!r})")
    from workbench_dsl.schedule.kfp import KfpSchedules

    return KfpSchedules(_kfp.connection(**opts))


def _local_view(s: Schedule, store: ScheduleStore, ticks: int = 0) -> dict[str, Any]:
    from workbench_dsl.schedule.view import local_view

    return local_view(s, store, ticks)


# -- schedule add ----------------------------------------------------------------------------


@app.command("add")
@handle_errors
def add_command(
    pipeline: str = typer.Argument(
        ..., metavar="PIPELINE", help="path/to/module.py[:name] or a compiled YAML"
    ),
    cron_expr: str = typer.Option(
        ..., "--cron", help="Cron, 5 fields: minute hour day month weekday, e.g. '0 3 * * 0'."
    ),
    param: list[str] | None = typer.Option(None, "-p", "--param", help="NAME=VALUE (repeatable)."),
    name: str | None = typer.Option(
        None, "--name", help="Schedule name (default: the pipeline's name)."
    ),
    catchup: bool = typer.Option(
        True, "--catchup/--no-catchup", help="Run every missed tick, or only the latest."
    ),
    max_concurrency: int = typer.Option(
        1, "--max-concurrency", min=1, help="Runs of this schedule at once (KFP: 1 to 10)."
    ),
    timezone: str = typer.Option(
        "UTC",
        "--timezone",
        help="IANA timezone the cron is read in (local only: KFP reads every cron in its "
        "cluster's cronScheduleTimezone, UTC by default).",
    ),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    experiment: str | None = typer.Option(
        None,
        "--experiment",
        help="Record its runs under this experiment (on KFP: the KFP experiment). Default: Default.",
    ),
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
) -> None:
    """Run PIPELINE on a cron schedule."""
    import os
    import time

    from workbench_dsl.engine.store import check_experiment_name
    from workbench_dsl.schedule import cron
    from workbench_dsl.schedule.pipeline_ref import prepare
    from workbench_dsl.schedule.store import Schedule

    raw = parse_params(param)
    if experiment is not None:  # "" is refused here as by `workbench run`, not read as Default
        experiment = check_experiment_name(experiment)
    if target != "local":
        from workbench_dsl.schedule.kfp import check_max_concurrency, check_timezone

        check_timezone(timezone)
        check_max_concurrency(max_concurrency)
        cron.to_kfp(cron_expr)
    kfp = (
        _kfp_target(
            target,
            host=host,
            namespace=namespace,
            token=token,
            cookies=cookies,
            ssl_ca_cert=ssl_ca_cert,
            no_verify_ssl=no_verify_ssl,
        )
        if target != "local"
        else None
    )
    if kfp is not None:
        prepared = prepare(pipeline, raw)
        data = kfp.create(
            name or prepared.name,
            prepared,
            cron_expr=cron_expr,
            max_concurrency=max_concurrency,
            catchup=catchup,
            experiment=experiment,
            enabled=not paused,
        )
        print_done(data, as_json, f"created KFP recurring run {data['name']} ({data['cron']})")
        return
    expr = cron.validate(cron_expr)
    cron.timezone(timezone)
    prepared = prepare(pipeline, raw)  # fails now, not at 3 a.m., if it does not compile
    now = time.time()
    store = _store()
    s = store.add(
        Schedule(
            name=name or prepared.name,
            id="",
            pipeline=prepared.ref,
            workdir=os.getcwd(),
            params=raw,
            cron=expr,
            timezone=timezone,
            catchup=catchup,
            max_concurrency=max_concurrency,
            paused=paused,
            created_at=now,
            updated_at=now,
            start_after=cron.iso(cron.now_utc()),
            experiment=experiment or "Default",
        )
    )
    view = _local_view(s, store, 1)
    nxt = view["next_ticks"][0] if view["next_ticks"] else "never (paused)"
    print_done(
        view,
        as_json,
        f"added schedule {s.name}: {expr} ({timezone}); next run {nxt}; "
        f"`workbench scheduler` starts the runs",
    )


# -- list / show -----------------------------------------------------------------------------


@app.command("list")
@handle_errors
def list_command(
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
) -> None:
    """List schedules."""
    kfp = _kfp_target(
        target,
        host=host,
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        no_verify_ssl=no_verify_ssl,
    )
    if kfp is not None:
        rows = kfp.all()
    else:
        store = _store()
        rows = [_local_view(s, store, 1) for s in store.all()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(
            "no schedules; add one with `workbench schedule add PIPELINE --cron '0 3 * * 0'`"
        )
        return
    for r in rows:
        state = "paused" if r.get("paused") else "active"
        if kfp is not None:
            if r.get("superseded"):
                state = "superseded (kept while its runs finish)"
            typer.echo(f"{r['name']}  {r['cron']}  {state}  {r['recurring_run_id']}")
            continue
        nxt = r["next_ticks"][0] if r["next_ticks"] else "-"
        last = r["recent"][0] if r["recent"] else None
        last_s = f"{last['tick']} {last['status']}" if last else "-"
        typer.echo(
            f"{r['name']}  {r['cron']} ({r['timezone']})  {state}  next {nxt}  last {last_s}"
        )


@app.command("show")
@handle_errors
def show_command(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The schedule's name (see: workbench schedule list)."
    ),
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
) -> None:
    """Show a schedule: settings, next ticks, recent runs."""
    kfp = _kfp_target(
        target,
        host=host,
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        no_verify_ssl=no_verify_ssl,
    )
    if kfp is not None:
        data = kfp.show(name)
    else:
        store = _store()
        data = _local_view(store.get(name), store, 5)
    if as_json:
        print_json(data)
        return
    for k, v in data.items():
        if k in ("recent", "raw", "next_ticks"):
            continue
        typer.echo(f"{k}: {v}")
    if "next_ticks" in data:
        typer.echo("next: " + (", ".join(data["next_ticks"]) or "- (paused)"))
    for r in data.get("recent", []):
        extra = f" run {r['run_id']}" if r.get("run_id") else ""
        why = f" ({r['reason']})" if r.get("reason") else ""
        typer.echo(f"  {r['tick']}  {r['status']}{extra}{why}")


# -- pause / resume / delete ---------------------------------------------------------------


def _set_paused(
    name: str, paused: bool, target: str, as_json: bool, run_missed: bool = False, **opts: Any
) -> None:
    from workbench_dsl.schedule.view import kfp_resume_line, set_paused

    kfp = _kfp_target(target, **opts)
    if kfp is not None:
        if paused:
            data = kfp.pause(name)
            line = f"paused KFP recurring run {name} (runs in flight go on)"
        else:
            data = kfp.resume(name, run_missed=run_missed)
            line = kfp_resume_line(data)
        print_done(data, as_json, line)
        return
    # Resuming picks up from now: ticks that fell while paused are not run.
    data = set_paused(_store(), name, paused)
    print_done(data, as_json, f"{'paused' if paused else 'resumed'} {name}")


@app.command("pause")
@handle_errors
def pause_command(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The schedule's name (see: workbench schedule list)."
    ),
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
) -> None:
    """Stop starting runs of a schedule (runs in flight go on)."""
    _set_paused(
        name,
        True,
        target,
        as_json,
        host=host,
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        no_verify_ssl=no_verify_ssl,
    )


@app.command("resume")
@handle_errors
def resume_command(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The schedule's name (see: workbench schedule list)."
    ),
    run_missed: bool = typer.Option(
        False,
        "--run-missed",
        help="KFP: let KFP run the ticks missed while paused (all with catch-up on, the "
        "latest with --no-catchup) instead of starting from now as a local schedule does.",
    ),
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
    kfp_version: str | None = _kfp.KFP_VERSION,
) -> None:
    """Start a paused schedule again from now: ticks missed while paused do not run.

    On KFP it is recreated from now when ticks were missed, unless --run-missed."""
    _set_paused(
        name,
        False,
        target,
        as_json,
        run_missed=run_missed,
        kfp_version=kfp_version,
        host=host,
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        no_verify_ssl=no_verify_ssl,
    )


@app.command("delete")
@handle_errors
def delete_command(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The schedule's name (see: workbench schedule list)."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="KFP before 2.16 only: delete even with runs in flight, which stops them (it "
        "names them). From 2.16 runs in flight go on and --force is not needed.",
    ),
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
    kfp_version: str | None = _kfp.KFP_VERSION,
) -> None:
    """Delete a schedule; runs in flight go on.

    On KFP before 2.16 it refuses while runs are in flight, unless --force."""
    kfp = _kfp_target(
        target,
        host=host,
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        no_verify_ssl=no_verify_ssl,
        kfp_version=kfp_version,
    )
    if kfp is not None:
        from workbench_dsl.schedule.view import kfp_delete_line

        data = kfp.delete(name, force=force)
        print_done(data, as_json, kfp_delete_line(data))
        return
    else:
        _store().delete(name)
        data = {"name": name, "deleted": True}
    print_done(data, as_json, f"deleted {name}")


# -- update ----------------------------------------------------------------------------------


@app.command("update")
@handle_errors
def update_command(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The schedule's name (see: workbench schedule list)."
    ),
    pipeline: str | None = typer.Option(None, "--pipeline", help="Run this pipeline from now on."),
    cron_expr: str | None = typer.Option(None, "--cron", help="New cron expression."),
    param: list[str] | None = typer.Option(
        None, "-p", "--param", help="NAME=VALUE to set (others are kept)."
    ),
    catchup: bool | None = typer.Option(
        None, "--catchup/--no-catchup", help="Change the catch-up policy."
    ),
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", min=1, help="Runs at once (KFP: 1 to 10)."
    ),
    timezone: str | None = typer.Option(None, "--timezone", help="New timezone."),
    experiment: str | None = typer.Option(
        None, "--experiment", help="Record its runs under this experiment from now on (local)."
    ),
    target: str = TARGET,
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
    kfp_version: str | None = _kfp.KFP_VERSION,
) -> None:
    """Change a schedule; runs in flight go on.

    On KFP a new version under the same name takes over every tick after the old one stopped."""
    from workbench_dsl.schedule import cron
    from workbench_dsl.schedule.pipeline_ref import prepare

    raw = parse_params(param)
    changes = (pipeline, cron_expr, catchup, max_concurrency, timezone, experiment)
    if not raw and all(c is None for c in changes):
        from workbench_dsl.errors import UsageError

        raise UsageError(
            "nothing to change: give --pipeline, --cron, -p NAME=VALUE, --catchup/--no-catchup, "
            "--max-concurrency, --timezone or --experiment"
        )
    if target != "local":
        from workbench_dsl.schedule.kfp import check_max_concurrency, check_timezone

        if experiment is not None:
            from workbench_dsl.errors import UsageError

            raise UsageError(
                "a KFP recurring run keeps its experiment; delete it and add it again with "
                "--experiment"
            )
        check_timezone(timezone)
        check_max_concurrency(max_concurrency)
        if cron_expr is not None:
            cron.to_kfp(cron_expr)
    kfp = _kfp_target(
        target,
        host=host,
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        no_verify_ssl=no_verify_ssl,
        kfp_version=kfp_version,
    )
    if kfp is not None:
        from workbench_dsl.schedule.view import kfp_update_line

        prepared = prepare(pipeline, raw) if pipeline else None
        typed = None
        if prepared is None and raw:
            typed = _typed_for_kfp(kfp, name, raw)
        data = kfp.update(
            name,
            pipeline=prepared,
            params=typed,
            cron_expr=cron_expr,
            max_concurrency=max_concurrency,
            catchup=catchup,
        )
        print_done(data, as_json, kfp_update_line(data))
        return
    store = _store()
    s = store.get(name)
    fields: dict[str, Any] = {}
    new_ref = pipeline or s.pipeline
    params = {**s.params, **raw}
    if pipeline or raw:
        fields["pipeline"] = prepare(new_ref, params).ref
        fields["params"] = params
    if cron_expr is not None or timezone is not None:
        fields["cron"] = cron.validate(cron_expr or s.cron)
        cron.timezone(timezone or s.timezone)
        fields["timezone"] = timezone or s.timezone
        # Ticks before the change followed the old schedule: the new one starts now.
        fields["start_after"] = cron.iso(cron.now_utc())
    if catchup is not None:
        fields["catchup"] = catchup
    if max_concurrency is not None:
        fields["max_concurrency"] = max_concurrency
    if experiment is not None:
        from workbench_dsl.engine.store import check_experiment_name

        fields["experiment"] = check_experiment_name(experiment)
    data = _local_view(store.update(name, **fields), store, 1)
    print_done(data, as_json, f"updated {name}")


def _typed_for_kfp(kfp: KfpSchedules, name: str, raw: dict[str, str]) -> dict[str, Any]:
    """-p values typed by the recurring run's own pipeline spec."""
    from workbench_dsl.engine.params import pipeline_arguments
    from workbench_dsl.engine.spec import PipelineSpec
    from workbench_dsl.schedule._kfp_read import spec_text as _spec_text

    spec = PipelineSpec.parse(_spec_text(kfp._current(name)))
    typed = pipeline_arguments(spec.input_definitions, raw, from_cli=True)
    return {k: v for k, v in typed.items() if k in raw}


# -- workbench scheduler ---------------------------------------------------------------------


@handle_errors
def scheduler_command(
    once: bool = typer.Option(False, "--once", help="Start what is due now, then exit."),
    poll: float = typer.Option(
        30.0, "--poll", min=0.2, help="Seconds between looks at the schedules at most."
    ),
) -> None:
    """Start due runs of the local schedules and triggers (foreground; see docs/schedule.md to run it as a service)."""
    import signal
    import threading

    from workbench_dsl.schedule.local import LocalScheduler

    sched = LocalScheduler()
    if once:
        r = sched.run_once()
        for k in r.started:
            typer.echo(f"started {k}")
        for k in r.skipped:
            typer.echo(f"skipped {k} ({_skip_why(k)})")
        for k in r.waiting:
            typer.echo(f"waiting {k} (max-concurrency reached)")
        for k, status, run_id in r.finished:
            typer.echo(f"finished {k}: {status}" + (f" (run {run_id})" if run_id else ""))
        for line in r.errors:
            typer.echo(line, err=True)
        return
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    n = len(sched.store.all())
    nt = len(sched.trigger_store.triggers())
    typer.echo(
        f"scheduler: watching {n} schedule(s) and {nt} trigger(s) in {sched.root.runs_db}; Ctrl-C stops it "
        f"(runs in flight go on)",
        err=True,
    )
    sched.serve(stop, poll=poll, say=lambda line: typer.echo(line))
    typer.echo("scheduler: stopped", err=True)


def _skip_why(label: str) -> str:
    from workbench_dsl.schedule.local import skip_reason

    return skip_reason(label)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="schedule")
    root.command("scheduler")(scheduler_command)
