"""``workbench compile``: a pipeline module to KFP v2 YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench_dsl.cli._common import check_output, handle_errors, write_output

ORDER = 10


@handle_errors
def compile_command(
    pipeline: str = typer.Argument(
        ..., metavar="PIPELINE", help="path/to/module.py[:name] or package.module[:name]"
    ),
    output: str | None = typer.Option(
        None, "-o", "--output", help="Where to write the YAML ('-' for stdout). Default: NAME.yaml"
    ),
) -> None:
    """Compile a pipeline to KFP v2 YAML that a cluster runs as is."""
    import sys

    from workbench_dsl.compile.compiler import compile_to_text
    from workbench_dsl.compile.loader import load_pipeline, pipeline_name

    if output not in (None, "-"):
        check_output(output, "-o")
    obj = load_pipeline(pipeline)
    text = compile_to_text(obj)
    if output == "-":
        sys.stdout.write(text)
        return
    path = Path(output) if output else Path(f"{pipeline_name(obj)}.yaml")
    write_output(str(path), text, "-o")
    typer.echo(f"wrote {path} (pipeline {pipeline_name(obj)})", err=True)


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_command)
