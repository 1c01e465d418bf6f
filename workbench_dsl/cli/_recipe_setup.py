"""``workbench recipe run`` for a recipe that declares ``SETUP = TriggerSetup(...)``.

Such a recipe (``retrain-on-drift``) closes a loop instead of running once: its
pipeline runs when an event happens. Setting it up is three idempotent steps:

1. the endpoint it rolls out to must exist: when it is not recorded, the recipe
   that creates it (``train-deploy``) runs first, with ``--approve`` if given;
   a recorded endpoint whose server is down is started again;
2. a trigger named ``SETUP.trigger`` runs the recipe's pipeline on ``SETUP.on``.
   It is added through ``workbench trigger add`` itself (a child process), so the
   event's own checks and options apply exactly; a trigger of that name that is
   already there is kept when it matches and refused with what differs when not;
3. it says what it did and how to watch the loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import typer

from workbench_dsl.cli._common import print_json
from workbench_dsl.errors import UsageError
from workbench_dsl.recipes import Recipe, TriggerSetup


def setup_of(recipe: Recipe) -> TriggerSetup | None:
    """The recipe's ``SETUP`` declaration, if it has one (reading it imports the module)."""
    if "SETUP" not in recipe.path.read_text(encoding="utf-8"):
        return None  # most recipes: no need to import them here
    from workbench_dsl.compile.loader import import_module

    found = getattr(import_module(str(recipe.path)), "SETUP", None)
    if found is not None and not isinstance(found, TriggerSetup):
        raise UsageError(
            f"{recipe.path}: SETUP must be a workbench_dsl.recipes.TriggerSetup "
            f"(got {type(found).__name__})"
        )
    return found


def set_up(
    recipe: Recipe,
    setup: TriggerSetup,
    params: dict[str, str],
    *,
    run_required: Any,
    json_out: bool,
) -> int:
    """Make sure the endpoint exists, add the trigger, say what happened; the exit code.

    Args:
        run_required: Runs the recipe named ``setup.requires_recipe`` (as ``recipe run``
            would) and returns its summary.
    """
    from workbench_dsl.cli.run import exit_code, print_summary, summary_json

    report: dict[str, Any] = {"recipe": recipe.name, "endpoint": setup.requires_endpoint}
    say = (lambda line: None) if json_out else (lambda line: typer.echo(line, err=True))
    endpoint = _endpoint(setup.requires_endpoint)
    if endpoint is None:
        say(
            f"endpoint {setup.requires_endpoint} does not exist yet: running recipe "
            f"{setup.requires_recipe} first"
        )
        summary = run_required(setup.requires_recipe)
        report["required_run"] = summary_json(summary)
        if not json_out:
            print_summary(summary)
        if summary.status != "SUCCEEDED" or _endpoint(setup.requires_endpoint) is None:
            report["error"] = (
                f"recipe {setup.requires_recipe} ended {summary.status} without creating "
                f"endpoint {setup.requires_endpoint}; nothing was set up"
            )
            if json_out:
                print_json(report)
            else:
                typer.echo(f"error: {report['error']}", err=True)
            return exit_code(summary.status) or 1
        report["endpoint_action"] = f"created by {setup.requires_recipe} run {summary.run_id}"
    elif endpoint.state != "running":
        from workbench_dsl.backends.deployer import local_deployer

        local_deployer().up([setup.requires_endpoint])
        report["endpoint_action"] = f"was {endpoint.state}: started again"
    else:
        report["endpoint_action"] = "exists"
    say(f"endpoint {setup.requires_endpoint}: {report['endpoint_action']}")

    trigger, added = _ensure_trigger(recipe, setup, params)
    report["trigger"] = trigger
    report["trigger_added"] = added
    if json_out:
        print_json(report)
        return 0
    what = "added" if added else "already set up, kept"
    typer.echo(
        f"trigger {setup.trigger}: {what}: {setup.on} runs pipeline {recipe.name}"
        + (f" with {', '.join(f'{k}={v}' for k, v in sorted(params.items()))}" if params else "")
    )
    _watch_hints(setup)
    return 0


def _endpoint(name: str) -> Any:
    from workbench_dsl.backends.deployer import local_deployer

    deployer = local_deployer()
    if not any(r.name == name and r.stable for r in deployer.store.all()):
        return None
    return deployer.get(name)


def _ensure_trigger(
    recipe: Recipe, setup: TriggerSetup, params: dict[str, str]
) -> tuple[dict[str, Any], bool]:
    """The trigger's record, and whether it was added now (False: it was already there)."""
    existing = _existing(setup.trigger)
    if existing is not None:
        differs = []
        if existing.get("on") != setup.on:
            differs.append(f"--on {existing.get('on')} (wanted {setup.on})")
        if (existing.get("params") or {}) != params:
            differs.append(f"parameters {existing.get('params') or {}} (wanted {params})")
        if differs:
            raise UsageError(
                f"trigger {setup.trigger} already exists with other settings: "
                f"{'; '.join(differs)}; `workbench trigger delete {setup.trigger}` and run "
                f"`workbench recipe run {recipe.name}` again to replace it"
            )
        return existing, False
    command = [
        sys.executable,
        "-m",
        "workbench_dsl",
        "trigger",
        "add",
        str(recipe.path),
        "--on",
        setup.on,
        "--name",
        setup.trigger,
        "--json",
        *[a for k, v in sorted(params.items()) for a in ("-p", f"{k}={v}")],
        *(["--event-param", setup.event_param] if setup.event_param else []),
        *setup.options,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        line = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise UsageError(
            f"could not add trigger {setup.trigger}: {line[0].removeprefix('error: ')}"
        )
    return json.loads(proc.stdout), True


def _existing(name: str) -> dict[str, Any] | None:
    from workbench_dsl.paths import local_root
    from workbench_dsl.schedule.trigger_store import TriggerStore

    store = TriggerStore(local_root().ensure().runs_db)
    try:
        found = [t for t in store.triggers() if t.name == name]
        return found[0].to_json() if found else None
    finally:
        store.close()


def _watch_hints(setup: TriggerSetup) -> None:
    from workbench_dsl.cli.recipe import _invocation

    wb = _invocation()
    ep = setup.requires_endpoint
    hints = [
        (f"{wb} scheduler", "evaluates the trigger (keep it running; --once for one pass)"),
        (f"{wb} endpoints drift {ep}", "the drift the trigger watches"),
        (f"{wb} trigger show {setup.trigger}", "its firings and the run each started"),
        (f"{wb} approvals list", "a retrained version waiting for your approval"),
        (f"{wb} endpoints show {ep}", "the canary split once it is rolled out"),
    ]
    width = max(len(c) for c, _ in hints)
    sys.stderr.write("\nwatch it:\n" + "".join(f"  {c.ljust(width)}  {w}\n" for c, w in hints))
