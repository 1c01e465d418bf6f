"""``workbench experiments``: the experiments local runs are recorded under, and their runs.

A run's experiment is set with ``workbench run --experiment NAME`` (KFP's
``Default`` when none is given), the same name ``workbench submit --experiment``
uses on a cluster.
"""

from __future__ import annotations

from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json
from workbench_dsl.errors import UsageError

ORDER = 31

experiments_app = typer.Typer(
    name="experiments",
    help="Experiments: groups of local runs to compare (workbench run --experiment NAME).",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print one JSON document.")


def _store() -> Any:
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import local_root

    return RunStore(local_root().ensure().runs_db)


def experiment_items(store: Any) -> list[dict[str, Any]]:
    """Every experiment with its run counts, pipelines and first/last run time."""
    from workbench_dsl.engine.run_view import iso

    return [
        {
            "experiment": r["experiment"],
            "runs": int(r["runs"]),
            "pipelines": sorted(set((r["pipelines"] or "").split(","))),
            "succeeded": int(r["succeeded"] or 0),
            "failed": int(r["failed"] or 0),
            "running": int(r["running"] or 0),
            "cancelled": int(r["cancelled"] or 0),
            "first_run_at": iso(r["first_at"]),
            "last_run_at": iso(r["last_at"]),
        }
        for r in store.experiments()
    ]


@handle_errors
def list_command(as_json: bool = JSON) -> None:
    """List experiments, the most recently used first."""
    from workbench_dsl.cli.runs import _table

    items = experiment_items(_store())
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo("no runs yet (start one with: workbench run PIPELINE --experiment NAME)")
        return
    _table(
        ["EXPERIMENT", "RUNS", "SUCCEEDED", "FAILED", "PIPELINES", "LAST RUN"],
        [
            [
                i["experiment"],
                str(i["runs"]),
                str(i["succeeded"]),
                str(i["failed"]),
                ",".join(i["pipelines"]),
                (i["last_run_at"] or "").replace("T", " "),
            ]
            for i in items
        ],
    )


@handle_errors
def show_command(
    name: str = typer.Argument(..., metavar="NAME", help="The experiment's name."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many runs (newest first)."),
    as_json: bool = JSON,
) -> None:
    """Show an experiment: its runs with their parameters, status, duration and cost."""
    from workbench_dsl.cli.runs import _fmt_duration, _table
    from workbench_dsl.engine.run_view import iso, run_duration, run_status

    store = _store()
    summary = next((i for i in experiment_items(store) if i["experiment"] == name), None)
    if summary is None:
        known = ", ".join(i["experiment"] for i in experiment_items(store)) or "none yet"
        raise UsageError(f"no experiment {name!r} (known: {known})")
    runs = [
        {
            "run_id": r["run_id"],
            "pipeline": r["pipeline"],
            "status": run_status(r),
            "created_at": iso(r["created_at"]),
            "duration_s": run_duration(r),
            "cost": round(float(r["cost"] or 0.0), 6),
            "parameters": store.run_parameters(r["run_id"]),
        }
        for r in store.query_runs(experiment=name, limit=limit)
    ]
    if as_json:
        print_json({**summary, "run_list": runs})
        return
    typer.echo(
        f"experiment {name}: {summary['runs']} run(s), {summary['succeeded']} succeeded, "
        f"{summary['failed']} failed"
    )
    _table(
        ["RUN", "PIPELINE", "STATUS", "STARTED", "DURATION", "PARAMETERS"],
        [
            [
                r["run_id"],
                r["pipeline"],
                r["status"],
                (r["created_at"] or "").replace("T", " "),
                _fmt_duration(r["duration_s"]),
                " ".join(f"{k}={v}" for k, v in r["parameters"].items())[:80],
            ]
            for r in runs
        ],
    )
    typer.echo(
        f"compare them with: workbench runs compare {' '.join(r['run_id'] for r in runs[:3])}"
    )


experiments_app.command("list")(list_command)
experiments_app.command("show")(show_command)


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
