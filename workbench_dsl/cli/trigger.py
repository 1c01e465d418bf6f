"""``workbench trigger``: run a pipeline when data lands, another pipeline's run ends or an
endpoint's inputs drift."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from workbench_dsl.cli import _kfp
from workbench_dsl.cli._common import (
    check_output,
    handle_errors,
    parse_params,
    print_done,
    print_json,
    write_output,
)

if TYPE_CHECKING:
    from workbench_dsl.schedule.trigger_store import Trigger, TriggerStore

ORDER = 61

app = typer.Typer(
    name="trigger",
    help="Event triggers run by `workbench scheduler`: new data in a folder, another pipeline's "
    "run finished, an endpoint's inputs drifted.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print one JSON document.")
#: KFP parameter types as the pipeline's author wrote them.
_PY_TYPE = {
    "NUMBER_INTEGER": "an int",
    "NUMBER_DOUBLE": "a float",
    "BOOLEAN": "a bool",
    "LIST": "a list",
    "STRUCT": "a dict",
}
NAME = typer.Argument(..., metavar="NAME", help="The trigger's name (see: workbench trigger list).")


def _store() -> TriggerStore:
    from workbench_dsl.paths import local_root
    from workbench_dsl.schedule.trigger_store import TriggerStore

    return TriggerStore(local_root().ensure().runs_db)


def _view(t: Trigger, store: TriggerStore, firings: int = 0) -> dict[str, Any]:
    data = t.to_json()
    data["firings"] = [
        {k: r[k] for k in ("event", "value", "status", "run_id", "reason", "log")}
        | {"at": r["created_at"]}
        for r in store.firings(t.id, limit=firings)
    ]
    return data


@app.command("add")
@handle_errors
def add_command(
    pipeline: str = typer.Argument(
        ..., metavar="PIPELINE", help="path/to/module.py[:name] or a compiled YAML"
    ),
    on: str = typer.Option(
        ...,
        "--on",
        help="dataset:PATH_OR_GLOB (a file's content changed), run:PIPELINE[:STATUS] "
        "(a run of PIPELINE finished, with STATUS if given: SUCCEEDED, FAILED, CANCELLED) or "
        "drift:ENDPOINT (an endpoint's inputs drifted from its training data: a local endpoint, or "
        "with --target kfp an InferenceService logging to [cluster] request_log_uri).",
    ),
    threshold: list[str] | None = typer.Option(
        None,
        "--threshold",
        help="drift: only. KEY=VALUE, repeatable or comma-separated: psi=0.2 (a feature's "
        "PSI), p=0.01 (its test's p-value), features=1 (drifted features that make the "
        "endpoint drifted), requests=50 (fewest logged instances), since=DURATION (only "
        "requests this recent). See docs/triggers.md.",
    ),
    param: list[str] | None = typer.Option(None, "-p", "--param", help="NAME=VALUE (repeatable)."),
    event_param: str | None = typer.Option(
        None,
        "--event-param",
        help="Pipeline input that receives the event: the changed file's path (dataset:), "
        "the finished run's id (run:) or the endpoint's name (drift:).",
    ),
    max_age: str | None = typer.Option(
        None,
        "--max-age",
        help="dataset: only. Fire when no matching file changed for this long (e.g. 6h), "
        "instead of on each change.",
    ),
    max_catchup: int = typer.Option(
        5, "--max-catchup", min=1, help="Events started at most per pass; older ones are skipped."
    ),
    max_concurrency: int = typer.Option(
        1, "--max-concurrency", min=1, help="Runs of this trigger at once."
    ),
    name: str | None = typer.Option(None, "--name", help="Trigger name (default: the pipeline's)."),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    experiment: str | None = typer.Option(
        None, "--experiment", help="Record its runs under this experiment (default: Default)."
    ),
    target: str = typer.Option(
        "local",
        "--target",
        help="local (started by `workbench scheduler`) or kfp (a KFP recurring run whose "
        "first step looks for the event; see docs/triggers.md).",
    ),
    cron_expr: str | None = typer.Option(
        None, "--cron", help="kfp only: how often the recurring run looks, e.g. '*/15 * * * *'."
    ),
    output: str | None = typer.Option(
        None, "--output", help="kfp only: write the compiled wrapper pipeline here, submit nothing."
    ),
    as_json: bool = JSON,
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
) -> None:
    """Run PIPELINE each time EVENT happens (started by `workbench scheduler`, or by KFP)."""
    import os
    import time

    from workbench_dsl.engine.store import check_experiment_name
    from workbench_dsl.errors import UsageError
    from workbench_dsl.schedule.events import (
        DatasetEvent,
        DriftEvent,
        RunEvent,
        parse_duration,
        parse_event,
        parse_threshold,
    )
    from workbench_dsl.schedule.pipeline_ref import prepare
    from workbench_dsl.schedule.trigger_local import scan_files
    from workbench_dsl.schedule.trigger_store import Trigger

    event = parse_threshold(parse_event(on), threshold)
    if output is not None:
        check_output(output, "--output")
    max_age_s = parse_duration(max_age) if max_age is not None else None
    if max_age_s is not None and not isinstance(event, DatasetEvent):
        raise UsageError(f"--max-age applies to dataset: events only (got --on {on!r})")
    raw = parse_params(param)
    check = dict(raw)
    if event_param and event_param in raw:
        raise UsageError(
            f"-p {event_param}=... and --event-param {event_param} both set it: drop one"
        )
    gives, sample = (
        ("the changed file's path", "/placeholder")
        if isinstance(event, DatasetEvent)
        else ("the endpoint's name", event.endpoint)
        if isinstance(event, DriftEvent)
        else ("the finished run's id", "run-id")
    )
    drift_inputs: dict[str, str] = {}

    def event_inputs(inputs: dict[str, Any]) -> dict[str, str]:
        """The inputs a firing fills: --event-param, and for drift: ``endpoint`` and
        ``drifted_features``, by type."""
        samples: dict[str, str] = {}
        if event_param and event_param in inputs:
            kind = str(inputs[event_param].get("parameterType", "STRING"))
            if kind != "STRING":
                raise UsageError(
                    f"--event-param {event_param}: the event gives {gives}, a string, but "
                    f"input {event_param!r} is {_PY_TYPE.get(kind, kind)}; name a str input"
                )
            samples[event_param] = sample
        if not isinstance(event, DriftEvent):
            return samples
        for n in ("endpoint", "drifted_features"):
            if n in inputs and n not in check and n != event_param:
                kind = str(inputs[n].get("parameterType", "STRING"))
                drift_inputs[n] = kind
                samples[n] = '["x"]' if kind == "LIST" else "x"
        return samples

    # Fails now if it does not compile or -p is wrong.
    prepared = prepare(pipeline, check, event_inputs=event_inputs)
    if event_param and event_param not in _inputs(prepared.text):
        raise UsageError(
            f"--event-param {event_param!r} is not an input of pipeline {prepared.name!r} "
            f"(inputs: {', '.join(sorted(_inputs(prepared.text))) or 'none'})"
        )
    if isinstance(event, RunEvent) and event.pipeline == prepared.name:
        raise UsageError(
            f"--on {on!r} would start {prepared.name!r} each time it finishes itself: "
            "chain it on another pipeline"
        )
    if target not in ("local", "kfp"):
        raise UsageError(f"--target must be local or kfp (got {target!r})")
    if target == "kfp":
        _add_kfp(
            prepared,
            event,
            raw,
            name=name,
            cron_expr=cron_expr,
            output=output,
            event_param=event_param,
            max_catchup=max_catchup,
            max_concurrency=max_concurrency,
            experiment=experiment,
            paused=paused,
            as_json=as_json,
            max_age=max_age_s,
            conn={
                "host": host,
                "namespace": namespace,
                "token": token,
                "cookies": cookies,
                "ssl_ca_cert": ssl_ca_cert,
                "no_verify_ssl": no_verify_ssl,
            },
        )
        return
    if cron_expr is not None or output is not None:
        raise UsageError("--cron and --output apply to --target kfp only")
    now = time.time()
    t = Trigger(
        name=name or prepared.name,
        id="",
        pipeline=prepared.ref,
        workdir=os.getcwd(),
        params=raw,
        event=event,
        event_param=event_param,
        max_age_s=max_age_s,
        max_catchup=max_catchup,
        max_concurrency=max_concurrency,
        paused=paused,
        experiment=check_experiment_name("Default" if experiment is None else experiment),
        created_at=now,
        updated_at=now,
        after=now,
        event_inputs=drift_inputs,
    )
    # The data there now is the baseline: only changes from here on fire.
    baseline = scan_files(t, event, {}) if isinstance(event, DatasetEvent) else []
    store = _store()
    store.add_trigger(t, baseline)
    data = _view(t, store)
    data["watching"] = len(baseline)
    what = (
        f"{len(baseline)} file(s) now"
        if isinstance(event, DatasetEvent)
        else "once per drift episode"
        if isinstance(event, DriftEvent)
        else "runs from now"
    )
    print_done(
        data,
        as_json,
        f"added trigger {t.name}: {event} ({what}); `workbench scheduler` starts the runs",
    )


def _add_kfp(
    prepared: Any,
    event: Any,
    raw: dict[str, str],
    *,
    name: str | None,
    cron_expr: str | None,
    output: str | None,
    event_param: str | None,
    max_catchup: int,
    max_concurrency: int,
    experiment: str | None,
    paused: bool,
    as_json: bool,
    max_age: float | None,
    conn: dict[str, Any],
) -> None:
    """Compile the wrapper pipeline; write it (--output) or create its recurring run."""
    from workbench_dsl.errors import UsageError
    from workbench_dsl.schedule import cron
    from workbench_dsl.schedule.kfp import KfpSchedules
    from workbench_dsl.schedule.pipeline_ref import PreparedPipeline
    from workbench_dsl.schedule.trigger_kfp import drift_settings, wrapper_pipeline

    if cron_expr is None:
        raise UsageError("--target kfp needs --cron: how often the recurring run looks for events")
    if max_age is not None:
        raise UsageError("--max-age is local only: a KFP step keeps no state between runs")
    from workbench_dsl.schedule.events import DriftEvent

    cron.to_kfp(cron_expr)  # validated as `schedule add --target kfp` does, before anything
    text = wrapper_pipeline(
        prepared,
        event,
        cron=cron_expr,
        event_param=event_param,
        max_catchup=max_catchup,
        max_concurrency=max_concurrency,
        kfp_host=conn.get("host") or "",
        drift=drift_settings(prepared.source_file) if isinstance(event, DriftEvent) else None,
    )
    wrapper = PreparedPipeline(
        ref=prepared.ref,
        name=f"{prepared.name}-on-event",
        text=text,
        params={k: v for k, v in prepared.params.items() if k != event_param},
    )
    if output is not None:
        write_output(output, text, "--output")
        data = {"name": name or prepared.name, "target": "kfp", "on": str(event), "output": output}
        print_done(
            data, as_json, f"wrote {output}: {wrapper.name}, runs {prepared.name} once per {event}"
        )
        return
    if not conn.get("host"):
        raise UsageError("--target kfp needs --host URL (or --output FILE to only compile)")
    data = KfpSchedules(_kfp.connection(**conn)).create(
        name or prepared.name,
        wrapper,
        cron_expr=cron_expr,
        max_concurrency=1,
        catchup=True,
        experiment=experiment,
        enabled=not paused,
    )
    print_done(
        data, as_json, f"created KFP recurring run {data['name']} ({data['cron']}) for {event}"
    )


def _inputs(spec_text: str) -> set[str]:
    from workbench_dsl.engine.spec import PipelineSpec

    return set(PipelineSpec.parse(spec_text).input_definitions)


@app.command("list")
@handle_errors
def list_command(as_json: bool = JSON) -> None:
    """List the local triggers."""
    store = _store()
    rows = [_view(t, store, 1) for t in store.triggers()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no triggers (add one with: workbench trigger add PIPELINE --on EVENT)")
    for r in rows:
        state = "paused" if r["paused"] else "active"
        last = r["firings"][0] if r["firings"] else None
        tail = (
            f"  last: {last['status']}" + (f" {last['run_id']}" if last and last["run_id"] else "")
            if last
            else ""
        )
        typer.echo(f"{r['name']}  {r['on']}  {state}{tail}")


@app.command("show")
@handle_errors
def show_command(
    name: str = NAME,
    firings: int = typer.Option(20, "--firings", min=1, help="How many recent firings to show."),
    as_json: bool = JSON,
) -> None:
    """Show a trigger and its recent firings, with the run each started."""
    store = _store()
    data = _view(store.get_trigger(name), store, firings)
    if as_json:
        print_json(data)
        return
    for k, v in data.items():
        if k != "firings":
            typer.echo(f"{k}: {v}")
    typer.echo("firings:" if data["firings"] else "firings: none yet")
    for f in data["firings"]:
        run = f" run {f['run_id']}" if f["run_id"] else ""
        why = f" ({f['reason']})" if f["reason"] else ""
        typer.echo(f"  {f['status']}{run}  {f['event']}{why}")


@app.command("pause")
@handle_errors
def pause_command(name: str = NAME, as_json: bool = JSON) -> None:
    """Stop starting runs; runs in flight go on."""
    store = _store()
    t = store.set_paused(name, True)
    print_done(_view(t, store), as_json, f"paused {name}")


@app.command("resume")
@handle_errors
def resume_command(name: str = NAME, as_json: bool = JSON) -> None:
    """Start runs again, for events from now on (what happened while paused does not fire)."""
    store = _store()
    t = store.set_paused(name, False)
    print_done(_view(t, store), as_json, f"resumed {name}")


@app.command("delete")
@handle_errors
def delete_command(name: str = NAME, as_json: bool = JSON) -> None:
    """Delete a trigger and its history; runs in flight go on."""
    store = _store()
    store.delete_trigger(name)
    print_done({"name": name, "deleted": True}, as_json, f"deleted {name}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="trigger")
