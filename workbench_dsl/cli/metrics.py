"""``workbench metrics``: the local root's Prometheus metrics, printed or served."""

from __future__ import annotations

from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors

ORDER = 90

app = typer.Typer(
    name="metrics",
    help="Prometheus metrics of runs, tasks, cost and endpoints (see docs/metrics.md).",
    no_args_is_help=True,
)


@app.command("serve")
@handle_errors
def serve_command(
    port: int = typer.Option(
        9464, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)."
    ),
) -> None:
    """Serve http://127.0.0.1:PORT/metrics for Prometheus until Ctrl-C."""
    import signal
    import threading

    from workbench_dsl.errors import UsageError
    from workbench_dsl.paths import local_root
    from workbench_dsl.telemetry.server import serve

    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        serve(
            local_root().ensure(),
            port,
            stop,
            lambda p: typer.echo(f"metrics: http://127.0.0.1:{p}/metrics (Ctrl-C stops)", err=True),
        )
    except OSError as e:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{port} ({e.strerror}): pick another --port"
        ) from None


@app.command("show")
@handle_errors
def show_command(
    as_json: bool = typer.Option(False, "--json", help="Print the samples as one JSON document."),
) -> None:
    """Print the exposition once (what a scrape of /metrics returns)."""
    import sys

    from prometheus_client.parser import text_string_to_metric_families

    from workbench_dsl.cli._common import print_json
    from workbench_dsl.paths import local_root
    from workbench_dsl.telemetry.prometheus import exposition

    text = exposition(local_root().ensure()).decode("utf-8")
    if not as_json:
        sys.stdout.write(text)
        return
    print_json(
        [
            {
                "name": f.name,
                "type": f.type,
                "help": f.documentation,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples
                ],
            }
            for f in text_string_to_metric_families(text)
        ]
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="metrics")
