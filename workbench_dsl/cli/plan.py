"""``workbench plan``: every Kubernetes object a run would create, rendered and validated first.

Like ``terraform plan``: the pipeline is compiled as ``workbench submit`` would
submit it; the KFP PipelineSpec and its kubernetes platform config are parsed
as the KFP backend parses them; each launcher's TrainJob, Katib Experiment
(with its trial template) and InferenceService (and the canary patch a later
deployment applies) is built with the launchers' own builders and checked
against the vendored CRD schemas of every supported version and the ported
admission rules (``workbench_dsl.compile.cluster``). Values that exist only at
run time are marked placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from workbench_dsl.cli._common import handle_errors, parse_params, print_json
from workbench_dsl.errors import UsageError

ORDER = 24


@dataclass(frozen=True)
class ClusterPlan:
    """A pipeline's compiled documents, its planned objects, and every problem found."""

    name: str
    docs: list[dict[str, Any]]
    objects: list[Any]  # runtime.plan.PlannedObject
    problems: dict[str, list[str]]  # file name -> problems

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def lines(self) -> list[str]:
        return [f"{where}: {p}" for where, found in self.problems.items() for p in found]


def make_plan(text: str, params: dict[str, Any] | None = None) -> ClusterPlan:
    """Plan and validate the compiled pipeline ``text`` for a cluster."""
    import yaml

    from workbench_dsl.compile.cluster import check_object, check_patch
    from workbench_dsl.compile.cluster.kfp import check_pipeline
    from workbench_dsl.runtime.plan import plan_pipeline

    docs = [d for d in yaml.safe_load_all(text) if d]
    problems: dict[str, list[str]] = {"pipeline.yaml": check_pipeline(docs)}
    objects = plan_pipeline(docs[0], params) if docs else []
    for obj in objects:
        found = list(obj.problems)
        found += check_patch(obj.base, obj.body) if obj.base is not None else check_object(obj.body)
        problems[obj.filename] = list(dict.fromkeys(found))
    name = str(((docs[0] if docs else {}).get("pipelineInfo") or {}).get("name") or "pipeline")
    return ClusterPlan(name=name, docs=docs, objects=objects, problems=problems)


def write_plan(plan: ClusterPlan, out: Path, text: str) -> list[Path]:
    """One YAML file per object (and the compiled pipeline) under ``out``."""
    from workbench_dsl.compile.compiler import write_atomic
    from workbench_dsl.runtime.plan import dumps

    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "pipeline.yaml"]
        write_atomic(written[0], text)
        for obj in plan.objects:
            path = out / obj.filename
            write_atomic(path, dumps(obj))
            written.append(path)
    except OSError as e:
        why = "it is not a directory" if out.exists() and not out.is_dir() else e.strerror or e
        raise UsageError(
            f"-o {out}: cannot write the plan there ({why}); choose another -o"
        ) from None
    return written


@handle_errors
def plan_command(
    pipeline: str = typer.Argument(
        ...,
        metavar="PIPELINE",
        help="path/to/module.py[:name], package.module[:name] or a compiled YAML",
    ),
    param: list[str] | None = typer.Option(None, "-p", "--param", help="NAME=VALUE (repeatable)."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Write pipeline.yaml and one YAML file per object here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show and validate every Kubernetes object a run of PIPELINE would create on a cluster.

    Exits 2, listing every problem, when the cluster would refuse any of them.
    """
    from workbench_dsl.schedule.pipeline_ref import prepare

    prepared = prepare(pipeline, parse_params(param))
    plan = make_plan(prepared.text, prepared.params)
    files: list[Path] = []
    if out is not None and plan.ok:
        files = write_plan(plan, out, prepared.text)
    if as_json:
        print_json(
            {
                "pipeline": plan.name,
                "ok": plan.ok,
                "objects": [
                    {
                        "step": o.step,
                        "kind": o.what,
                        "name": (o.body.get("metadata") or {}).get("name"),
                        "file": o.filename,
                        "placeholders": o.placeholders,
                        "problems": plan.problems.get(o.filename, []),
                        "body": o.body,
                    }
                    for o in plan.objects
                ],
                "problems": plan.lines(),
                "written": [str(f) for f in files],
            }
        )
    else:
        typer.echo(f"plan for {plan.name}: the pipeline (PipelineSpec + platform config)")
        for o in plan.objects:
            state = "ok" if not plan.problems.get(o.filename) else "REFUSED"
            name = (o.body.get("metadata") or {}).get("name") or (o.base or {}).get(
                "metadata", {}
            ).get("name", "")
            typer.echo(f"  {o.step:<20} {o.what:<24} {name:<28} {state}")
        for f in files:
            typer.echo(f"wrote {f}")
        for line in plan.lines():
            typer.echo(f"error: {line}", err=True)
    if not plan.ok:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
