"""``workbench runs compare``: runs side by side, with what differs marked."""

from __future__ import annotations

import json
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json
from workbench_dsl.errors import UsageError


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@handle_errors
def compare_command(
    runs: list[str] = typer.Argument(
        ..., metavar="RUN RUN...", help="Two or more run ids (or unique prefixes)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Compare runs: parameters, outputs, metrics, and each task's status, time, cache and cost.

    Rows whose values differ between the runs are marked with '*'.
    """
    from workbench_dsl.cli.runs import _fmt_duration, _table
    from workbench_dsl.client import compare_runs, get_run

    if len(runs) < 2:
        raise UsageError("give two or more runs to compare (see: workbench runs list)")
    loaded = [get_run(r) for r in runs]
    ids = [r.id for r in loaded]
    if len(set(ids)) != len(ids):
        raise UsageError(f"the same run is given twice ({', '.join(ids)})")
    data = compare_runs(loaded)
    if as_json:
        print_json(data)
        return
    head = ["", "", *ids]
    summary = [
        ["", "pipeline", *(s["pipeline"] for s in data["runs"])],
        ["", "experiment", *(s["experiment"] for s in data["runs"])],
        ["", "status", *(s["status"] for s in data["runs"])],
        ["", "duration", *(_fmt_duration(s["duration_s"]) for s in data["runs"])],
        ["", "cost", *(f"${s['cost']:.4f}" for s in data["runs"])],
        ["", "cache hits", *(f"{s['cache_hits']}/{s['tasks']}" for s in data["runs"])],
    ]
    _table(head, summary)
    for title in ("params", "outputs", "metrics"):
        rows = data[title]
        if not rows:
            continue
        typer.echo(f"\n{ {'params': 'parameters'}.get(title, title) }:")
        _table(
            head,
            [
                ["*" if r["differs"] else "", r["name"], *(_cell(v)[:40] for v in r["values"])]
                for r in rows
            ],
        )
    typer.echo("\ntasks (status, duration, cost, cache):")
    rows = []
    for t in data["tasks"]:
        cells = []
        for status, cached, dur, cost in zip(
            t["status"], t["cached"], t["duration_s"], t["cost"], strict=True
        ):
            if status is None:
                cells.append("-")
            else:
                money = f" ${cost:.4f}" if cost else ""
                cells.append(f"{status} {_fmt_duration(dur)}{money}{' cached' if cached else ''}")
        rows.append(["*" if t["differs"] else "", t["name"], *cells])
    _table(head, rows)


def attach(group: typer.Typer) -> None:
    """Add ``compare`` to the ``workbench runs`` group."""
    group.command("compare")(compare_command)
