"""``workbench init [DIR] [--name NAME]``: start a new project with a pipeline that runs."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from workbench_dsl.cli._common import handle_errors, print_json

ORDER = 5


@handle_errors
def init_command(
    directory: Path = typer.Argument(
        Path("."), metavar="[DIR]", help="Where to create the project (default: here)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The project's name (default: the directory's name)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: the name and the files."),
) -> None:
    """Create a project: workbench.toml, a pipeline, its test, .gitignore, README.

    Never overwrites a file: if any of them exists, nothing is written (exit 2).
    """
    from workbench_dsl.scaffold import plan, write

    project = plan(directory, name)
    written = write(project)
    if as_json:
        print_json({"name": project.name, "files": [str(p) for p in written]})
        return
    root = directory.resolve()
    typer.echo(f"created project {project.name} in {root}:")
    for path in written:
        typer.echo(f"  {path.relative_to(root)}")
    here = Path.cwd().resolve()
    cd = "" if root == here else f"cd {os.path.relpath(root, here)}\n  "
    typer.echo(
        f"\nnext:\n  {cd}workbench run pipelines/{project.module}.py\n"
        f"  python -m pytest tests          # needs `pip install pytest`\n"
        f"  workbench compile pipelines/{project.module}.py -o {project.module}.yaml"
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
