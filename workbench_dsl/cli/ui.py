"""``workbench ui``: the local dashboard (runs, costs, sweeps, models, approvals, endpoints,
schedules, lineage) served on 127.0.0.1."""

from __future__ import annotations

import typer

from workbench_dsl import _env
from workbench_dsl.cli._common import handle_errors

ORDER = 90


@handle_errors
def ui_command(
    port: int = typer.Option(
        8765, "--port", min=0, max=65535, help="Port to listen on (0: any free one)."
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the dashboard in a browser."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Anything but loopback lets other machines connect "
        "(they need the token for every request).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar=_env.UI_TOKEN,
        help="The access token (default: a new random one each start).",
    ),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI of the registry (default: tracking_uri of the registry "
        "section in workbench.toml, else the local one).",
    ),
) -> None:
    """Serve the local dashboard: runs, sweeps, models, endpoints, schedules and lineage.

    Costs and approvals too, with approve/reject, promote/rollback and pause/resume buttons.

    Prints a URL with an access token (as Jupyter does); opening it once logs the browser in.
    """
    from workbench_dsl.cli.models import interactive_mlflow
    from workbench_dsl.ui.server import serve

    interactive_mlflow()
    try:
        serve(
            host=host,
            port=port,
            token=token,
            open_browser=open_browser,
            tracking_uri=tracking_uri,
        )
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command("ui")(ui_command)
