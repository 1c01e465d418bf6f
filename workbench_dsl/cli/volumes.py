"""``workbench volumes``: the local stand-ins for PersistentVolumeClaims (list, rm)."""

from __future__ import annotations

import typer

from workbench_dsl.cli._common import handle_errors, print_json
from workbench_dsl.errors import UsageError

ORDER = 37

volumes_app = typer.Typer(
    name="volumes",
    help="Local volumes that stand in for PVCs (CreatePVC, mount_pvc): list, rm.",
    no_args_is_help=True,
)


def _root():  # type: ignore[no-untyped-def]
    from workbench_dsl.paths import local_root

    return local_root().ensure().root


@volumes_app.command("list")
@handle_errors
def list_command(json_out: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List local volumes: name, files, size, folder."""
    from workbench_dsl.engine.volumes import list_volumes

    items = list_volumes(_root())
    if json_out:
        print_json(items)
        return
    if not items:
        typer.echo("no volumes (a CreatePVC step or a mounted claim makes one)")
        return
    for i in items:
        typer.echo(f"{i['name']}  {i['files']} files, {i['size']} B  {i['path']}")


@volumes_app.command("rm")
@handle_errors
def rm_command(
    name: str = typer.Argument(..., help="The volume (claim) name."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Delete a local volume and everything in it."""
    from workbench_dsl.engine.volumes import remove_volume

    if not remove_volume(_root(), name):
        raise UsageError(f"no volume {name!r} (see: workbench volumes list)")
    if json_out:
        print_json({"removed": name})
    else:
        typer.echo(f"removed volume {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(volumes_app, name="volumes")
