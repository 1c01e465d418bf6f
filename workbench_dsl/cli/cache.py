"""``workbench cache``: list and clear the local engine's task cache."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json

ORDER = 35

cache_app = typer.Typer(
    name="cache", help="The local task cache: list, clear.", no_args_is_help=True
)


def _store() -> Any:
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import local_root

    root = local_root().ensure()
    return RunStore(root.runs_db)


@handle_errors
def list_command(json_out: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List cached task results (newest first)."""
    store = _store()
    items = []
    for r in store.cache_list():
        outputs = json.loads(r["outputs_json"])
        arts = [a for v in (outputs.get("artifacts") or {}).values() for a in v]
        items.append(
            {
                "key": r["key"],
                "pipeline": r["pipeline"],
                "task": r["task"],
                "component": r["component"],
                "run_id": r["run_id"],
                "created_at": datetime.fromtimestamp(r["created_at"]).isoformat(timespec="seconds"),
                "hits": int(r["hits"] or 0),
                "parameters": sorted((outputs.get("parameters") or {}).keys()),
                "artifacts": len(arts),
                "size": sum(int(a.get("size") or 0) for a in arts),
            }
        )
    if json_out:
        print_json(items)
        return
    if not items:
        typer.echo("the cache is empty")
        return
    header = ["KEY", "PIPELINE", "TASK", "HITS", "ARTIFACTS", "CREATED"]
    rows = [
        [
            i["key"][:12],
            i["pipeline"] or "",
            i["task"] or "",
            str(i["hits"]),
            f"{i['artifacts']} ({i['size']} B)" if i["artifacts"] else "-",
            i["created_at"].replace("T", " "),
        ]
        for i in items
    ]
    widths = [max(len(h), *(len(r[n]) for r in rows)) for n, h in enumerate(header)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@handle_errors
def clear_command(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Forget every cached result (the next run executes every task)."""
    n = _store().cache_clear()
    if json_out:
        print_json({"cleared": n})
    else:
        typer.echo(f"cleared {n} cached result{'s' if n != 1 else ''}")


cache_app.command("list")(list_command)
cache_app.command("clear")(clear_command)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
