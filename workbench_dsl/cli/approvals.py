"""``workbench approve``, ``workbench reject`` and ``workbench approvals list``: decide on model versions.

A ``@register(approval="manual")`` step waits until a person decides. Locally
the decision goes to the engine of the run that waits (which refuses it from any
process of that run), and is recorded on the version (the OS user, when, comment;
``--by`` as a claim); an approval sets the step's ``promote_to`` alias.
"""

from __future__ import annotations

import typer

from workbench_dsl.cli._common import handle_errors, print_json
from workbench_dsl.cli.models import TRACKING_URI_HELP, open_cli_registry
from workbench_dsl.errors import UsageError

ORDER = 61
BY_HELP = "A name to record beside the OS user (shown as a claim: the OS user is the approver)."
RUN_HELP = "The run whose engine takes the decision, when several runs wait on the version."

approvals_app = typer.Typer(
    name="approvals", help="Model versions waiting for approval.", no_args_is_help=True
)


def _decide(
    model: str,
    version: str,
    *,
    approve: bool,
    comment: str | None,
    by: str | None,
    run: str | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    from workbench_dsl.backends import approvals

    if not version.isdigit() or int(version) < 1:
        raise UsageError(
            f"bad version {version!r}: give its number, e.g. `workbench approve {model} 3` "
            f"(`workbench approvals list` shows the versions waiting)"
        )
    registry = open_cli_registry(tracking_uri)
    decided = approvals.decide(
        registry, model, version, approve=approve, by=by, comment=comment, run=run
    )
    if as_json:
        print_json(decided.to_json())
        return
    verb = "approved" if approve else "rejected"
    line = f"{model} version {version} {verb} by {decided.who}"
    if approve and decided.promote_to:
        line += f"; alias {decided.promote_to} -> version {version}"
    typer.echo(line)


@handle_errors
def approve_command(
    model: str = typer.Argument(..., metavar="MODEL", help="The registered model."),
    version: str = typer.Argument(..., metavar="VERSION", help="The version waiting for approval."),
    comment: str | None = typer.Option(
        None, "--comment", "-m", help="Why (recorded on the version)."
    ),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
    run: str | None = typer.Option(None, "--run", metavar="RUN", help=RUN_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Approve a model version a pipeline is waiting on (sets its promote_to alias)."""
    _decide(
        model,
        version,
        approve=True,
        comment=comment,
        by=by,
        run=run,
        tracking_uri=tracking_uri,
        as_json=as_json,
    )


@handle_errors
def reject_command(
    model: str = typer.Argument(..., metavar="MODEL", help="The registered model."),
    version: str = typer.Argument(..., metavar="VERSION", help="The version waiting for approval."),
    comment: str | None = typer.Option(None, "--comment", "-m", help="Why (required)."),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
    run: str | None = typer.Option(None, "--run", metavar="RUN", help=RUN_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Reject a model version a pipeline is waiting on; it can never receive an alias."""
    _decide(
        model,
        version,
        approve=False,
        comment=comment,
        by=by,
        run=run,
        tracking_uri=tracking_uri,
        as_json=as_json,
    )


@approvals_app.command("list")
@handle_errors
def list_approvals(
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=TRACKING_URI_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the model versions waiting for a decision, with the command that approves each."""
    from workbench_dsl.backends import approvals

    waiting = [a.to_json() for a in approvals.pending(open_cli_registry(tracking_uri))]
    if as_json:
        print_json(waiting)
        return
    if not waiting:
        typer.echo("nothing is waiting for approval")
        return
    for a in waiting:
        where = f"{a['pipeline'] or '-'} run {a['run_id'] or '-'} / {a['step'] or '-'}"
        if a["state"] == "expired":
            typer.echo(f"{a['model']} {a['version']}  expired {a['deadline']}  ({where})")
            continue
        typer.echo(
            f"{a['model']} {a['version']}  waiting since {a['requested_at']}, until "
            f"{a['deadline']}  ({where})\n    {a['command']}\n"
            f"    workbench reject {a['model']} {a['version']} --comment WHY"
        )


def register(app: typer.Typer) -> None:
    app.command("approve")(approve_command)
    app.command("reject")(reject_command)
    app.add_typer(approvals_app)
