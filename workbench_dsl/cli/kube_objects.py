"""``workbench secrets`` and ``workbench configmaps``: local stand-ins for Kubernetes objects.

Values are stored owner-only under the local root; ``list`` shows names and
keys, never a secret's values.
"""

from __future__ import annotations

from pathlib import Path

import typer

from workbench_dsl.cli._common import handle_errors, print_json
from workbench_dsl.errors import UsageError

ORDER = 36


def _store(kind: str):  # type: ignore[no-untyped-def]
    from workbench_dsl.engine.kube_objects import ObjectStore
    from workbench_dsl.paths import local_root

    return ObjectStore(local_root().ensure().root, kind)


def _values(pairs: list[str] | None, files: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{key or item!r}: write each value as KEY=VALUE")
        out[key] = value
    for item in files or []:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise UsageError(f"--from-file {item!r}: write it as KEY=PATH")
        from workbench_dsl.engine.kube_objects import from_bytes

        try:
            out[key] = from_bytes(Path(path).read_bytes())  # any bytes, as Kubernetes keeps them
        except OSError as e:
            raise UsageError(f"--from-file {key}: cannot read {path}: {e.strerror}") from None
    if not out:
        raise UsageError("give at least one KEY=VALUE or --from-file KEY=PATH")
    return out


def _make(kind: str, noun: str, plural: str) -> typer.Typer:
    show_values = kind == "configmap"
    sub = typer.Typer(
        name=plural,
        help=(
            f"Local stand-ins for Kubernetes {noun}s that tasks read (as env vars or "
            f"files): set, list, rm."
        ),
        no_args_is_help=True,
    )

    @sub.command("set")
    @handle_errors
    def set_command(
        name: str = typer.Argument(..., help=f"The {noun}'s name, as the pipeline names it."),
        pairs: list[str] = typer.Argument(None, metavar="KEY=VALUE...", help="Keys to set."),
        from_file: list[str] = typer.Option(
            None,
            "--from-file",
            metavar="KEY=PATH",
            help="A key whose value is a file's bytes (text or binary).",
        ),
        replace: bool = typer.Option(False, "--replace", help="Drop the keys not given here."),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON object."),
    ) -> None:
        """Create a local object or set some of its keys."""
        keys = _store(kind).set(name, _values(pairs, from_file), replace=replace)
        if json_out:
            print_json({"name": name, "keys": keys})
        else:
            typer.echo(f"{noun} {name}: keys {', '.join(keys)}")

    @sub.command("list")
    @handle_errors
    def list_command(
        json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
    ) -> None:
        """List local objects and their keys (a secret's values are never shown)."""
        store = _store(kind)
        items = []
        for n in store.names():
            data = store.get(n) or {}
            item: dict[str, object] = {"name": n, "keys": sorted(data)}
            if show_values:
                item["data"] = data
            items.append(item)
        if json_out:
            print_json(items)
            return
        if not items:
            typer.echo(f"no {noun}s (set one: workbench {plural} set NAME KEY=VALUE)")
            return
        for i in items:
            typer.echo(f"{i['name']}  {', '.join(i['keys'])}")  # type: ignore[arg-type]

    @sub.command("rm")
    @handle_errors
    def rm_command(
        name: str = typer.Argument(..., help=f"The {noun} to remove."),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON object."),
    ) -> None:
        """Remove a local object."""
        if not _store(kind).remove(name):
            raise UsageError(f"no {noun} {name!r} (see: workbench {plural} list)")
        if json_out:
            print_json({"removed": name})
        else:
            typer.echo(f"removed {noun} {name}")

    return sub


def register(app: typer.Typer) -> None:
    app.add_typer(_make("secret", "secret", "secrets"), name="secrets")
    app.add_typer(_make("configmap", "config map", "configmaps"), name="configmaps")
