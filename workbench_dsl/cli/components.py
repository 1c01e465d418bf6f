"""``workbench components list | show | path``: the prebuilt KFP components shipped with the package.

For people who write plain KFP: each is a component YAML they load with
``kfp.components.load_component_from_file(path)``; these commands say where the
files are (inside the installed package, or ``components/`` of a checkout) and
what each one takes and returns.
"""

from __future__ import annotations

from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json

ORDER = 16

components_app = typer.Typer(
    name="components",
    help="The prebuilt KFP components (component YAML for plain KFP): list, show, path.",
    no_args_is_help=True,
)


def _as_json(component: Any) -> dict[str, Any]:
    def ports(items: Any) -> list[dict[str, Any]]:
        return [
            {"name": p.name, "type": p.type, "default": p.default, "optional": p.optional}
            for p in items
        ]

    return {
        "name": component.name,
        "kfp_name": component.kfp_name,
        "path": str(component.path),
        "description": component.description,
        "inputs": ports(component.inputs),
        "outputs": ports(component.outputs),
    }


@components_app.command("list")
@handle_errors
def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the prebuilt components, what each does, and where its YAML is."""
    from workbench_dsl.prebuilt import list_components, read_component

    found = [read_component(p) for p in list_components()]
    if as_json:
        print_json([_as_json(c) for c in found])
        return
    if not found:
        typer.echo("no prebuilt components in this installation")
        return
    width = max(len(c.name) for c in found)
    for c in found:
        typer.echo(f"{c.name.ljust(width)}  {c.description}")
    typer.echo(f"\nin {found[0].path.parent}; `workbench components show NAME` for the inputs")


@components_app.command("show")
@handle_errors
def show_command(
    name: str = typer.Argument(..., metavar="NAME", help="The component (see `components list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a component's inputs and outputs, its path, and how to load it in plain KFP."""
    from workbench_dsl.prebuilt import get_component

    c = get_component(name)
    if as_json:
        print_json(_as_json(c))
        return
    typer.echo(f"{c.name}: {c.description}\n{c.path}\n")
    for title, ports in (("inputs", c.inputs), ("outputs", c.outputs)):
        typer.echo(f"{title}:")
        width = max((len(p.name) for p in ports), default=0)
        for p in ports:
            extra = ""
            if p.default is not None:
                extra = f", default {p.default!r}"
            elif p.optional:
                extra = ", optional"
            typer.echo(f"  {p.name.ljust(width)}  {p.type}{extra}")
    typer.echo(
        "\nin plain KFP:\n"
        "  from kfp import components\n"
        f"  {c.name} = components.load_component_from_file({str(c.path)!r})"
    )


@components_app.command("path")
@handle_errors
def path_command(
    name: str = typer.Argument(
        None, metavar="[NAME]", help="A component; without it, the folder of all of them."
    ),
) -> None:
    """Print the path of a component's YAML (or of their folder), for scripts."""
    from workbench_dsl.errors import UsageError
    from workbench_dsl.prebuilt import components_dir, get_component

    if name:
        typer.echo(str(get_component(name).path))
        return
    folder = components_dir()
    if folder is None:
        raise UsageError("this installation has no prebuilt components (reinstall workbench-dsl)")
    typer.echo(str(folder))


def register(app: typer.Typer) -> None:
    app.add_typer(components_app, name="components")
