"""``workbench run``: execute a pipeline on this machine with the local engine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, parse_params, print_json
from workbench_dsl.errors import UsageError

ORDER = 20

#: Exit code of a run stopped by Ctrl-C or SIGTERM (the shell's 128 + SIGINT).
EXIT_CANCELLED = 130


def is_compiled_file(ref: str) -> bool:
    from workbench_dsl.compile.loader import is_compiled_file as compiled

    return compiled(ref)


def pipeline_text(ref: str) -> str:
    """Compiled YAML for a PIPELINE argument: a compiled file as is, a module compiled in memory."""
    from workbench_dsl.compile.loader import load_pipeline, read_compiled

    if is_compiled_file(ref):
        return read_compiled(ref)
    from workbench_dsl.compile.compiler import compile_to_text

    return compile_to_text(load_pipeline(ref))


def max_parallel_for(ref: str, given: int | None) -> int:
    """``--max-parallel``, else ``[engine] max_parallel`` in workbench.toml, else the default."""
    if given is not None:
        if given < 1:
            raise UsageError("--max-parallel must be 1 or more")
        return given
    from workbench_dsl.config import load_config
    from workbench_dsl.engine.execute import default_max_parallel

    target, _, _ = ref.partition(":") if not is_compiled_file(ref) else (ref, "", "")
    start = Path(target).expanduser()
    cfg = load_config(start if start.exists() else None)
    value = cfg.get("engine", "max_parallel")
    if value is not None:
        if int(value) < 1:
            raise UsageError(f"{cfg.path}: engine.max_parallel must be 1 or more")
        return int(value)
    return default_max_parallel()


def summary_json(summary: Any) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "status": summary.status,
        "tasks": summary.tasks,
        "outputs": summary.outputs,
    }


def print_summary(summary: Any) -> None:
    """The end of a run for a person: status, outputs, and each failure with its log."""
    err = sys.stderr
    n = len(summary.tasks)
    cached = sum(1 for t in summary.tasks if t["cached"])
    extra = f" ({cached} cached)" if cached else ""
    cost = f", cost ${summary.cost:.4f}" if summary.cost >= 0.00005 else ""
    err.write(
        f"{summary.status} run {summary.run_id} in {summary.duration_s:.1f}s: "
        f"{n} task{'s' if n != 1 else ''}{extra}{cost}\n"
    )
    if summary.outputs:
        err.write("outputs:\n")
        for name, value in summary.outputs.items():
            shown = value.get("uri") if isinstance(value, dict) and "uri" in value else value
            err.write(f"  {name} = {shown}\n")
    for f in summary.failures:
        err.write(f"✗ {f['task']}: {f['error']}\n")
        if f.get("log_path"):
            err.write(f"  log: {f['log_path']}\n")
    if summary.status in ("FAILED", "CANCELLED"):
        err.write(f"resume with: workbench runs resume {summary.run_id}\n")
    err.flush()


def exit_code(status: str) -> int:
    return {"SUCCEEDED": 0, "CANCELLED": EXIT_CANCELLED}.get(status, 1)


@handle_errors
def run_command(
    pipeline: str = typer.Argument(
        ...,
        metavar="PIPELINE",
        help="A compiled pipeline (.yaml/.json) or a module: path/to/module.py[:name]",
    ),
    param: list[str] = typer.Option(
        None, "-p", "--param", metavar="NAME=VALUE", help="A pipeline parameter (repeatable)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object with the result."),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Run every task; do not use cached results."
    ),
    max_parallel: int | None = typer.Option(
        None, "--max-parallel", metavar="N", help="Most tasks running at once."
    ),
    experiment: str = typer.Option(
        "Default",
        "--experiment",
        metavar="NAME",
        help="Record the run under this experiment (see: workbench experiments list).",
    ),
    input_art: list[str] = typer.Option(
        None,
        "--input",
        metavar="NAME=PATH",
        help="A pipeline input artifact: a local file or folder (repeatable).",
    ),
) -> None:
    """Run a pipeline locally: tasks in parallel, cached, resumable."""
    summary = execute_ref(
        pipeline,
        parse_params(param),
        json_out=json_out,
        no_cache=no_cache,
        max_parallel=max_parallel,
        experiment=experiment,
        inputs=parse_inputs(input_art),
    )
    finish(summary, json_out)


def parse_inputs(items: list[str] | None) -> dict[str, str]:
    """``--input NAME=PATH`` options as a dict."""
    from workbench_dsl.errors import UsageError

    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--input {item!r}: write it as NAME=PATH")
        if name in out:
            raise UsageError(f"--input {name} given twice: give each input once")
        out[name] = path
    return out


def execute_ref(
    pipeline: str,
    params: dict[str, str],
    *,
    json_out: bool,
    no_cache: bool,
    max_parallel: int | None,
    with_view: Callable[[Any], list[Any]] | None = None,
    experiment: str = "Default",
    inputs: dict[str, str] | None = None,
) -> Any:
    """Compile (if needed) and run ``pipeline`` with progress on stderr; the run's summary.

    ``with_view(view)``, when given, returns more observers for the run, made with the
    progress view so they can print through it; each one's ``close()`` runs at the end.
    """
    from workbench_dsl.engine import execute, progress
    from workbench_dsl.engine.runner import TaskRunner
    from workbench_dsl.engine.store import check_experiment_name
    from workbench_dsl.paths import local_root

    experiment = check_experiment_name(experiment)  # before anything starts
    parallel = max_parallel_for(pipeline, max_parallel)
    root = local_root().ensure()
    # A compiled file: the engine makes its runner at the first task that runs (none
    # for a fully cached rerun). A module: the worker imports kfp while it compiles.
    runner = None if is_compiled_file(pipeline) else TaskRunner(root)
    if runner is not None:
        runner.warmup()
    view = progress.for_terminal(json_out)
    extra = with_view(view) if with_view is not None else []
    try:
        text = pipeline_text(pipeline)
        return execute.start(
            text,
            params,
            from_cli=True,
            root=root,
            cache=not no_cache,
            max_parallel=parallel,
            observers=[view, *extra],
            origin=pipeline,
            runner=runner,
            experiment=experiment,
            inputs=inputs,
        )
    finally:
        if runner is not None:
            runner.close()  # already closed after a run; here for errors before it starts
        for o in extra:
            close = getattr(o, "close", None)
            if close is not None:
                close()
        stop = getattr(view, "stop", None)
        if stop is not None:
            stop()


def finish(summary: Any, json_out: bool) -> None:
    """Print the run's result (JSON or for a person) and exit with its code."""
    if json_out:
        print_json(summary_json(summary))
        if summary.failures:
            for f in summary.failures:
                sys.stderr.write(f"✗ {f['task']}: {f['error']}\n")
                if f.get("log_path"):
                    sys.stderr.write(f"  log: {f['log_path']}\n")
    else:
        print_summary(summary)
    raise typer.Exit(exit_code(summary.status))


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
