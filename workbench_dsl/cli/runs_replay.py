"""``workbench runs replay``: one task of a past run again, in the foreground, optionally under pdb."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, parse_params, print_json


@handle_errors
def replay_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id or a unique prefix of one."),
    task: str = typer.Argument(..., metavar="TASK", help="The task (full name or its last part)."),
    param: list[str] = typer.Option(
        None, "-p", "--param", metavar="NAME=VALUE", help="Override one of its parameters."
    ),
    debug: bool = typer.Option(
        False, "--pdb", help="Stop in the debugger where the task raises (post-mortem)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the outcome as one JSON object at the end."
    ),
) -> None:
    """Run one task of a past run again with exactly the inputs it had.

    Parameter values and input artifacts (checked by digest) are the run's; -p
    overrides a parameter. Outputs go to a scratch directory it prints, never to
    the cache, the run or the registry. @train replays one rank, @sweep one
    trial, @register the evaluation and @serve the predictor on a sample.
    """
    from workbench_dsl.replay import execute, prepare

    plan = prepare(run, task, parse_params(param))
    err = sys.stderr
    err.write(f"replaying {plan.task} of run {plan.run_id} ({plan.kind})\n")
    for name in plan.overridden:
        err.write(
            f"  {name} = {json.dumps(plan.params.get(name, None), default=str)} (overridden)\n"
        )
    for note in plan.notes:
        err.write(f"  note: {note}\n")
    err.write(f"scratch: {plan.scratch}\n")
    err.flush()
    code, outputs = execute(plan, debug=debug, stdout_to_stderr=as_json)
    artifacts: dict[str, list[str]] = {}
    metadata: dict[str, dict[str, Any]] = {}  # what the task recorded, e.g. a Metrics' values
    for name, listed in (outputs.get("artifacts") or {}).items():
        for a in listed.get("artifacts") or []:
            if a.get("metadata"):
                metadata[name] = dict(a["metadata"])
        # Only what the task wrote (a replayed trial writes no trials table, for one).
        paths = [str(a.get("custom_path") or a.get("uri")) for a in listed.get("artifacts") or []]
        written = [p for p in paths if os.path.lexists(p)]
        if written:
            artifacts[name] = written
    params: dict[str, Any] = dict(outputs.get("parameterValues") or {})
    result: dict[str, Any] = {
        "run_id": plan.run_id,
        "task": plan.task,
        "kind": plan.kind,
        "exit_code": code,
        "scratch": str(plan.scratch),
        "parameters": params,
        "artifacts": artifacts,
        "metadata": metadata,
    }
    if as_json:
        print_json(result)
    else:
        err.write(f"{'✓ replay succeeded' if code == 0 else f'✗ replay failed (exit {code})'}\n")
        for name, value in params.items():
            err.write(f"  {name} = {json.dumps(value, default=str)}\n")
        for name, uris in artifacts.items():
            for uri in uris:
                err.write(f"  {name}: {uri}\n")
        for name, meta in metadata.items():
            err.write(f"  {name} metadata: {json.dumps(meta, default=str)}\n")
        err.write(f"outputs are in {plan.scratch}\n")
    raise typer.Exit(0 if code == 0 else 1)


def attach(group: typer.Typer) -> None:
    """Add ``replay`` to the ``workbench runs`` group."""
    group.command("replay")(replay_command)
