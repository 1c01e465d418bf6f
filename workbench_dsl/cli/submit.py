"""``workbench submit``: compile a pipeline and start it as a run on a Kubeflow Pipelines cluster."""

from __future__ import annotations

import typer

from workbench_dsl.cli import _kfp
from workbench_dsl.cli._common import handle_errors, parse_params, print_json

ORDER = 25


@handle_errors
def submit_command(
    pipeline: str = typer.Argument(
        ...,
        metavar="PIPELINE",
        help="path/to/module.py[:name], package.module[:name] or a compiled YAML",
    ),
    param: list[str] | None = typer.Option(None, "-p", "--param", help="NAME=VALUE (repeatable)."),
    experiment: str | None = typer.Option(
        None,
        "--experiment",
        help="Experiment to add the run to (created if missing; default 'Default').",
    ),
    run_name: str | None = typer.Option(None, "--run-name", help="Display name of the run."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Disable KFP caching for this run."),
    service_account: str | None = typer.Option(
        None, "--service-account", help="Kubernetes service account of the run's pods."
    ),
    pipeline_root: str | None = typer.Option(
        None, "--pipeline-root", help="Where the run's artifacts go (e.g. s3://bucket/path)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    host: str | None = _kfp.HOST,
    namespace: str | None = _kfp.NAMESPACE,
    token: str | None = _kfp.TOKEN,
    cookies: str | None = _kfp.COOKIES,
    ssl_ca_cert: str | None = _kfp.SSL_CA_CERT,
    proxy: str | None = _kfp.PROXY,
    client_id: str | None = _kfp.CLIENT_ID,
    other_client_id: str | None = _kfp.OTHER_CLIENT_ID,
    other_client_secret: str | None = _kfp.OTHER_CLIENT_SECRET,
    no_verify_ssl: bool = _kfp.NO_VERIFY_SSL,
) -> None:
    """Compile PIPELINE, validate it as `workbench plan` does, and create a run of it on KFP.

    Nothing is submitted when the cluster would refuse any object the run creates.
    """
    import tempfile
    from pathlib import Path

    from workbench_dsl.cli.plan import make_plan
    from workbench_dsl.schedule.kfp_client import connect, kfp_errors
    from workbench_dsl.schedule.pipeline_ref import prepare

    conn = _kfp.connection(
        host,
        namespace,
        token,
        cookies,
        ssl_ca_cert,
        proxy,
        client_id,
        other_client_id,
        other_client_secret,
        no_verify_ssl,
    )
    prepared = prepare(pipeline, parse_params(param))
    # What the cluster would refuse is found here, before anything is submitted.
    plan = make_plan(prepared.text, prepared.params)
    if not plan.ok:
        for line in plan.lines():
            typer.echo(f"error: {line}", err=True)
        typer.echo(
            f"error: nothing submitted: {len(plan.lines())} problem(s); "
            f"`workbench plan {pipeline}` shows every object",
            err=True,
        )
        raise typer.Exit(2)
    client = connect(conn)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{prepared.name}.yaml"
        path.write_text(prepared.text, encoding="utf-8")
        with kfp_errors(conn):
            result = client.create_run_from_pipeline_package(
                str(path),
                arguments=prepared.params,
                run_name=run_name or prepared.name,
                experiment_name=experiment,
                namespace=conn.namespace,
                pipeline_root=pipeline_root,
                enable_caching=False if no_cache else None,
                service_account=service_account,
            )
    run_id = result.run_id
    url = f"{conn.host.rstrip('/')}/#/runs/details/{run_id}"
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "pipeline": prepared.name,
                "experiment": experiment or "Default",
                "params": prepared.params,
                "url": url,
            }
        )
    else:
        typer.echo(f"submitted {prepared.name}: run {run_id}")
        typer.echo(url)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit_command)
