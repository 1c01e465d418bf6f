"""``workbench models``: registered models, their versions, aliases, metrics and approvals."""

from __future__ import annotations

import time
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json

ORDER = 60

TRACKING_URI_HELP = (
    "MLflow tracking URI of the registry (default: [registry] tracking_uri in workbench.toml, "
    "else the local SQLite registry under .workbench/)"
)

models_app = typer.Typer(
    name="models",
    help="Registered models: versions, aliases, metrics, approval state.",
    no_args_is_help=True,
)


def interactive_mlflow() -> None:
    """A person waits on this process: a tracking server that does not answer fails in
    seconds, not after MLflow's default retries (seven, backing off for minutes, silently).
    A value the user set wins."""
    import os

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def open_cli_registry(tracking_uri: str | None) -> Any:
    """The registry a command talks to: the option, then workbench.toml, then the local one."""
    from workbench_dsl.backends.registry import open_configured_registry

    interactive_mlflow()

    return open_configured_registry(tracking_uri)


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def version_json(v: Any) -> dict[str, Any]:
    """One version with its approval state and the run that produced it."""
    from workbench_dsl.backends.approvals import version_view

    return version_view(v)


@models_app.command("list")
@handle_errors
def list_models(
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List registered models with their newest version and aliases."""
    models = open_cli_registry(tracking_uri).models()
    if as_json:
        print_json([m.to_json() for m in models])
        return
    if not models:
        typer.echo("no registered models (a @register step creates them)")
        return
    for m in models:
        aliases = ", ".join(f"{a} -> {v}" for a, v in m.aliases.items()) or "no aliases"
        typer.echo(
            f"{m.name}  latest version {m.latest_version or '-'} of {m.versions}  "
            f"{aliases}  updated {_when(m.updated_at)}"
        )


@models_app.command("show")
@handle_errors
def show_model(
    name: str = typer.Argument(..., metavar="NAME", help="The registered model."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a model's versions: aliases, metrics, approval state and the run that produced each."""
    from workbench_dsl.errors import UsageError

    versions = open_cli_registry(tracking_uri).versions(name)
    if not versions:
        raise UsageError(f"no registered model named {name!r} (see `workbench models list`)")
    rows = [version_json(v) for v in versions]
    if as_json:
        print_json({"name": name, "versions": rows})
        return
    typer.echo(name)
    for row in rows:
        aliases = ", ".join(row["aliases"]) or "-"
        typer.echo(
            f"  version {row['version']}  aliases: {aliases}  created {_when(row['created_at'])}"
        )
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(row["metrics"].items())) or "-"
        typer.echo(f"    metrics: {metrics}")
        if row["champion"]:
            typer.echo(f"    vs champion: {row['champion']['summary']}")
        approval = row["approval"]
        if approval:
            state = approval["state"]
            if approval.get("by"):
                state += f" by {approval['by']} at {approval.get('at')}"
            if approval.get("comment"):
                state += f": {approval['comment']}"
            if approval.get("command"):
                state += f"; approve with: {approval['command']}"
            typer.echo(f"    approval: {state}")
        made = row["produced_by"]
        if made["run_id"]:
            typer.echo(
                f"    produced by: {made['pipeline'] or '-'} run {made['run_id']} / {made['step']}"
            )
        else:
            typer.echo(f"    produced by: MLflow run {row['mlflow_run_id']}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app)
