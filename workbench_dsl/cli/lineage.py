"""``workbench lineage``: where an artifact, run, model version or endpoint came from and went."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from workbench_dsl.cli._common import handle_errors, print_json

if TYPE_CHECKING:
    from workbench_dsl.backends.lineage.graph import LineageGraph

ORDER = 70


@handle_errors
def lineage_command(
    target: str | None = typer.Argument(
        None,
        metavar="[TARGET]",
        help=(
            "models:/NAME/VERSION, endpoint:NAME, run:RUN_ID (or a run id), a dataset "
            "name (pipeline/task/output[@sha256:...]) or an artifact's path. "
            "Without it: what lineage knows about."
        ),
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    dot: bool = typer.Option(False, "--dot", help="Print Graphviz DOT (pipe to `dot -Tsvg`)."),
    depth: int = typer.Option(50, "--depth", min=1, help="How many steps to follow each way."),
    push: bool = typer.Option(
        False,
        "--push",
        help="Send the local events to the configured OpenLineage backend (OPENLINEAGE_URL, "
        "openlineage.yml, [lineage] url) and exit.",
    ),
) -> None:
    """Where TARGET came from and where it went (OpenLineage lineage of local runs).

    Prints the chain upstream (endpoint <- model version <- training step <- dataset <- ...)
    and downstream of TARGET.
    """
    from workbench_dsl.backends.lineage import load_settings
    from workbench_dsl.backends.lineage.graph import LineageGraph
    from workbench_dsl.backends.lineage.report import lineage_report, to_dot, to_text
    from workbench_dsl.errors import UsageError
    from workbench_dsl.paths import local_root

    events_file = local_root().lineage_events
    if push:
        _push(events_file, as_json)
        return
    graph = LineageGraph.load(events_file)
    if target is None:
        _overview(graph, as_json)
        return
    if not graph.nodes:
        settings = load_settings()
        why = (
            "" if settings.enabled else " (lineage is disabled: OPENLINEAGE_DISABLED or [lineage])"
        )
        raise UsageError(f"no lineage recorded yet in {events_file}{why}; run a pipeline first")
    report = lineage_report(graph, target, depth=depth)
    if as_json:
        print_json(report)
    elif dot:
        typer.echo(to_dot(report), nl=False)
    else:
        typer.echo(to_text(report))


def _overview(graph: LineageGraph, as_json: bool) -> None:
    from workbench_dsl.backends.lineage.report import overview

    groups = overview(graph)
    if as_json:
        print_json({k: [n.to_json() for n in v] for k, v in groups.items()})
        return
    if not any(groups.values()):
        typer.echo("no lineage recorded yet: run a pipeline, then `workbench lineage TARGET`")
        return
    for key, title, example in (
        ("model_versions", "model versions", lambda n: f"{n.name}/{n.version}"),
        ("endpoints", "endpoints", lambda n: n.name),
        ("runs", "recent runs", lambda n: f"run:{n.data.get('engine_run_id', n.id[4:])}"),
        ("datasets", "datasets (latest version)", lambda n: n.name),
    ):
        if groups[key]:
            typer.echo(f"{title}:")
            for n in groups[key]:
                typer.echo(f"  {example(n)}    {n.label()}")


def _push(events_file: Path, as_json: bool) -> None:
    from workbench_dsl.backends.lineage import load_settings
    from workbench_dsl.backends.lineage.emitter import build_transport
    from workbench_dsl.backends.lineage.graph import read_events
    from workbench_dsl.errors import JobFailed, UsageError

    settings = load_settings()
    if settings.remote is None:
        raise UsageError(
            "no OpenLineage backend is configured: set OPENLINEAGE_URL (e.g. "
            "http://localhost:5000 for Marquez), write an openlineage.yml, or set "
            "[lineage] url in workbench.toml"
        )
    try:
        transport = build_transport(settings)
    except Exception as e:  # the client rejects its configuration (a bad URL, a bad yml)
        raise UsageError(
            f"cannot use the OpenLineage backend {settings.remote_label}: "
            f"{' '.join(str(e).split()) or type(e).__name__}; fix OPENLINEAGE_URL, "
            f"openlineage.yml or [lineage] url in workbench.toml"
        ) from None
    if transport is None:
        raise UsageError(
            f"the configured OpenLineage transport ({settings.remote_label}) sends nowhere"
        )
    sent = 0
    for ev in read_events(events_file):
        try:
            transport.emit(ev)
        except Exception as e:
            raise JobFailed(
                f"sent {sent} event(s), then {settings.remote_label} failed: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
        sent += 1
    if as_json:
        print_json({"sent": sent, "backend": settings.remote_label})
    else:
        typer.echo(f"sent {sent} event(s) to {settings.remote_label}")


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage_command)
