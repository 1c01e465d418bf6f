"""``workbench recipe list | show | run``: the whole lifecycle with one command.

Recipes are ordinary pipeline modules (``recipes/`` here, or the project's
own); ``recipe run`` is ``workbench run`` on one of them, plus what a demo
needs around it: with ``--approve`` it approves, from outside the run, the
model versions the run asks a person to approve; without it, it says which
command to run and waits; at the end it says where to look next.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, parse_params, print_json
from workbench_dsl.engine.events import BaseObserver

ORDER = 15

recipe_app = typer.Typer(
    name="recipe", help="One-command recipes: list, show and run them.", no_args_is_help=True
)


@recipe_app.command("list")
@handle_errors
def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the recipes (built-in, and the project's own in ./recipes)."""
    from workbench_dsl.recipes import find_recipes

    recipes = find_recipes()
    if as_json:
        print_json(
            [
                {"name": r.name, "summary": r.summary, "path": str(r.path), "builtin": r.builtin}
                for r in recipes.values()
            ]
        )
        return
    if not recipes:
        typer.echo("no recipes found")
        return
    width = max(len(n) for n in recipes)
    for r in recipes.values():
        where = "" if r.builtin else "  (project)"
        typer.echo(f"{r.name.ljust(width)}  {r.summary}{where}")


def _describe(path: str) -> dict[str, Any]:
    """Parameters and steps of a recipe's pipeline, from its compiled spec."""
    import yaml

    from workbench_dsl._graph import topological_order
    from workbench_dsl.compile.compiler import compile_to_text
    from workbench_dsl.compile.loader import load_pipeline

    spec = next(yaml.safe_load_all(compile_to_text(load_pipeline(path))))
    params = []
    defs = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}) or {}
    for name, d in defs.items():
        default = d.get("defaultValue")
        if d.get("parameterType") == "NUMBER_INTEGER" and isinstance(default, float):
            default = int(default)  # KFP writes integer defaults as floats
        params.append({"name": name, "type": d.get("parameterType"), "default": default})
    steps: list[str] = []

    def walk(dag: dict[str, Any]) -> None:
        tasks = dag.get("tasks") or {}
        edges = {n: t.get("dependentTasks") or [] for n, t in tasks.items()}
        for task_name in topological_order(edges):
            comp = spec["components"][tasks[task_name]["componentRef"]["name"]]
            if "dag" in comp:
                walk(comp["dag"])
            else:
                steps.append(task_name)

    walk(spec.get("root", {}).get("dag", {}))
    return {"pipeline": spec["pipelineInfo"]["name"], "parameters": params, "steps": steps}


@recipe_app.command("show")
@handle_errors
def show_command(
    name: str = typer.Argument(..., metavar="NAME", help="The recipe (see `recipe list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what a recipe does, its parameters and steps, and where its source is."""
    from workbench_dsl.recipes import get_recipe

    recipe = get_recipe(name)
    info = _describe(str(recipe.path))
    if as_json:
        print_json({"name": recipe.name, "path": str(recipe.path), "doc": recipe.doc, **info})
        return
    typer.echo(f"{recipe.name}: pipeline {info['pipeline']} ({recipe.path})\n")
    typer.echo(recipe.doc.strip() + "\n")
    typer.echo("parameters:")
    width = max((len(p["name"]) for p in info["parameters"]), default=0)
    for p in info["parameters"]:
        kind = str(p["type"]).lower().replace("number_", "")
        typer.echo(f"  -p {p['name'].ljust(width)}  {kind}, default {p['default']!r}")
    typer.echo("steps: " + " -> ".join(info["steps"]))
    typer.echo(f"\ncopy it to edit it: mkdir -p recipes && cp {recipe.path} recipes/")


class ApprovalWatcher(BaseObserver):
    """Watches a run's manual approvals from outside it: approves them, or says how to.

    The run's engine refuses a decision from any process of the run; this runs in the
    engine's own process (the CLI a person started, with ``--approve`` on its command
    line), so the engine takes it: the OS user is recorded as the approver, with the
    comment "approved with `workbench recipe run --approve`".
    """

    def __init__(self, view: Any, approve: bool, interval: float = 1.0) -> None:
        self.view = view
        self.approve = approve
        self.interval = interval
        self.run_id: str | None = None
        self.handled: set[tuple[str, str]] = set()
        self.approved: list[str] = []
        self.errors: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_run_start(self, run: Any) -> None:
        self.run_id = run.run_id
        self._thread = threading.Thread(target=self._loop, name="wb-approvals", daemon=True)
        self._thread.start()

    def on_run_end(self, run: Any) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _say(self, line: str) -> None:
        notice = getattr(self.view, "on_notice", None)
        if notice is not None:
            notice(line)
        else:
            sys.stderr.write(f"note: {line}\n")

    def _loop(self) -> None:
        registry = None
        while not self._stop.wait(self.interval):
            try:
                if registry is None:
                    registry = self._open()
                    if registry is None:
                        continue
                self._check(registry)
            except Exception as e:  # the registry is being created, or a decision raced
                message = f"{type(e).__name__}: {e}"
                if message not in self.errors:  # say each distinct problem once
                    self.errors.add(message)
                    if len(self.errors) > 1:
                        self._say(f"approval watcher: {message}")

    def _open(self) -> Any:
        from workbench_dsl.backends.registry import open_configured_registry
        from workbench_dsl.config import load_config
        from workbench_dsl.paths import local_root

        if (
            not load_config().get("registry", "tracking_uri")
            and not local_root().mlflow_db.exists()
        ):
            return None  # no register step has created the local registry yet
        return open_configured_registry()

    def _check(self, registry: Any) -> None:
        from workbench_dsl.backends import approvals

        for p in approvals.pending(registry):  # what the live engines hold, this one included
            key = (p.model, p.version)
            if p.run_id != self.run_id or key in self.handled or p.state != "pending":
                continue
            self.handled.add(key)
            if self.approve:
                approvals.decide(
                    registry,
                    p.model,
                    p.version,
                    approve=True,
                    comment="approved with `workbench recipe run --approve`",
                    run=self.run_id,
                )
                self.approved.append(f"{p.model} {p.version}")
                self._say(f"approved {p.model} version {p.version} (--approve)")
            else:
                self._say(
                    f"{p.model} version {p.version} waits for your decision: "
                    f"`{p.command}` or `workbench reject {p.model} {p.version} --comment WHY` "
                    f"(in another terminal, or in `workbench ui`)"
                )


def _next_steps(summary: Any) -> None:
    out = summary.outputs or {}
    err = sys.stderr
    url = out.get("endpoint_url")
    if isinstance(url, str) and url.startswith("http"):
        err.write(f"\nendpoint: {url}\n")
        curl = out.get("curl")
        if isinstance(curl, str) and curl.startswith("curl "):
            err.write(f"try it:   {curl}\n")
    wb = _invocation()
    hints = [
        (f"{wb} runs show {summary.run_id}", "the steps, their logs and cost"),
        (f"{wb} models list", "the registered versions and approvals"),
        (f"{wb} endpoints list", "the endpoints and their canary split"),
        (f"{wb} lineage run:{summary.run_id}", "what came from what"),
        (f"{wb} ui", "all of it in the browser"),
    ]
    width = max(len(c) for c, _ in hints)
    err.write("\nlook around:\n" + "".join(f"  {c.ljust(width)}  {w}\n" for c, w in hints))


def _invocation() -> str:
    """How to call `workbench` again: by name when it is on PATH, else by its path."""
    import os
    import shutil

    me = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    found = shutil.which("workbench")
    if not me.endswith("workbench") or (found and os.path.realpath(found) == me):
        return "workbench"
    rel = os.path.relpath(sys.argv[0])
    return rel if not rel.startswith("..") else sys.argv[0]


@recipe_app.command("run")
@handle_errors
def run_command(
    name: str = typer.Argument(..., metavar="NAME", help="The recipe (see `recipe list`)."),
    param: list[str] = typer.Option(
        None, "-p", "--param", metavar="NAME=VALUE", help="A recipe parameter (repeatable)."
    ),
    approve: bool = typer.Option(
        False,
        "--approve",
        help="Approve the run's manual approvals yourself (for demos); otherwise it waits. "
        "For a recipe that adds a trigger: the run of the recipe it builds on.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object with the result."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step again."),
    max_parallel: int | None = typer.Option(
        None, "--max-parallel", metavar="N", help="Most tasks running at once."
    ),
) -> None:
    """Run a recipe locally: the whole lifecycle, one command.

    A recipe that runs on an event (retrain-on-drift) is set up instead: the recipe
    it builds on runs first when its endpoint does not exist, then a trigger is added.
    """
    from workbench_dsl.cli._recipe_setup import set_up, setup_of
    from workbench_dsl.cli.run import execute_ref, exit_code, print_summary, summary_json
    from workbench_dsl.recipes import get_recipe

    def run(recipe_name: str, params: dict[str, str]) -> Any:
        return execute_ref(
            str(get_recipe(recipe_name).path),
            params,
            json_out=json_out,
            no_cache=no_cache,
            max_parallel=max_parallel,
            with_view=lambda view: [ApprovalWatcher(view, approve)],
        )

    recipe = get_recipe(name)
    setup = setup_of(recipe)
    if setup is not None:
        code = set_up(
            recipe,
            setup,
            parse_params(param),
            run_required=lambda required: run(required, {}),
            json_out=json_out,
        )
        raise typer.Exit(code)
    summary = run(recipe.name, parse_params(param))
    if json_out:
        print_json(summary_json(summary))
    else:
        print_summary(summary)
        if summary.status == "SUCCEEDED":
            _next_steps(summary)
    raise typer.Exit(exit_code(summary.status))


def register(app: typer.Typer) -> None:
    app.add_typer(recipe_app, name="recipe")
