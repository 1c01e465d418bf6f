"""A trigger on KFP alone: a recurring run whose first step looks for the event.

KFP has recurring runs and no event triggers. ``workbench trigger add --target kfp``
compiles a wrapper pipeline around the user's one: a lightweight ``check-event`` step
lists the events of the window since the previous cron tick (``[previous tick, this
tick)``, from the run's scheduled time), and a ``dsl.ParallelFor`` over them runs the
user's pipeline (loaded from its compiled YAML as a graph component) once per event,
the event's value wired to ``--event-param``. A tick with no event runs no iteration.
Each event falls in exactly one window and KFP fires each tick once, so one run per event
holds without state of our own; the same recurring-run code as ``workbench schedule
--target kfp`` creates it.

(No ``from __future__ import annotations`` here: KFP reads the check step's annotations
as types.)
"""

import inspect
from typing import Any, NamedTuple

from workbench_dsl.schedule.events import DatasetEvent, Event
from workbench_dsl.schedule.pipeline_ref import PreparedPipeline

#: Image of the check step (the kfp line is added by KFP's lightweight launcher).
CHECK_IMAGE = "python:3.11-slim"


def check_event(
    event: str, cron: str, schedule_time: str, max_events: int, kfp_host: str
) -> NamedTuple("Outputs", [("events", list)]):  # type: ignore[valid-type]
    """The values of the events of ``[previous tick, schedule_time)``, oldest first, at most
    ``max_events`` (the newest). Runs inside the KFP step: every import is here."""
    from collections import namedtuple
    from datetime import UTC, datetime

    from croniter import croniter

    end = datetime.fromisoformat(schedule_time.replace("Z", "+00:00")).astimezone(UTC)
    start = croniter(cron, end).get_prev(datetime)
    kind, _, rest = event.partition(":")
    found: list[tuple[float, str]] = []
    if kind == "dataset":
        import fsspec

        fs, path = fsspec.core.url_to_fs(rest)
        for name, info in fs.glob(path, detail=True).items():
            if info.get("type") != "file":
                continue
            when = info.get("mtime") or info.get("LastModified") or info.get("updated")
            if isinstance(when, str):
                when = datetime.fromisoformat(when.replace("Z", "+00:00"))
            ts = when.timestamp() if isinstance(when, datetime) else float(when)
            if start.timestamp() <= ts < end.timestamp():
                protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
                found.append((ts, name if protocol == "file" else f"{protocol}://{name}"))
    elif kind == "run":
        import kfp

        pipeline, _, status = rest.partition(":")
        # KFP spells it CANCELED; ours is CANCELLED.
        kfp_status = {"CANCELLED": "CANCELED"}.get(status, status)
        wanted = {kfp_status} if status else {"SUCCEEDED", "FAILED", "CANCELED"}
        client = kfp.Client(host=kfp_host or None)
        token = ""
        while True:
            page = client.list_runs(page_token=token, page_size=100, sort_by="created_at desc")
            for run in page.runs or []:
                spec = run.pipeline_spec or {}
                if (spec.get("pipelineInfo") or {}).get("name") != pipeline:
                    continue
                done = run.finished_at
                if run.state in wanted and done is not None and start <= done.astimezone(UTC) < end:
                    found.append((done.timestamp(), run.run_id))
            oldest = page.runs[-1].created_at if page.runs else None
            token = page.next_page_token or ""
            if not token or (oldest is not None and oldest.astimezone(UTC) < start):
                break
    else:
        raise ValueError(f"unknown event {event!r}")
    Outputs = namedtuple("Outputs", ["events"])
    return Outputs([value for _, value in sorted(found)][-max_events:])


def wrapper_pipeline(
    prepared: PreparedPipeline,
    event: Event,
    *,
    cron: str,
    event_param: str | None,
    max_catchup: int,
    max_concurrency: int,
    kfp_host: str = "",
) -> str:
    """The compiled wrapper pipeline (YAML) a KFP recurring run of the trigger runs."""
    from kfp import components, dsl

    from workbench_dsl.compile.compiler import compile_to_text
    from workbench_dsl.engine.spec import PipelineSpec

    spec = PipelineSpec.parse(prepared.text)
    if spec.input_artifact_definitions:
        from workbench_dsl.errors import UsageError

        raise UsageError(
            f"pipeline {prepared.name!r} takes artifact inputs "
            f"({', '.join(sorted(spec.input_artifact_definitions))}): a recurring run can only "
            "pass parameters; read the data from a path parameter instead"
        )
    packages = ["croniter>=3,<8"]
    if isinstance(event, DatasetEvent):
        packages.append("fsspec>=2024.2")
        scheme = event.pattern.split("://", 1)[0] if "://" in event.pattern else ""
        packages += {"s3": ["s3fs>=2024.2"], "gs": ["gcsfs>=2024.2"], "gcs": ["gcsfs>=2024.2"]}.get(
            scheme, []
        )
    check = dsl.component(base_image=CHECK_IMAGE, packages_to_install=packages)(check_event)
    inner = components.load_component_from_text(prepared.text)
    inputs = spec.input_definitions
    names = [n for n in inputs if n != event_param]

    def body(*args: Any) -> None:
        given = dict(zip(names, args, strict=True))
        found = check(
            event=str(event),
            cron=cron,
            schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
            max_events=max_catchup,
            kfp_host=kfp_host,
        ).set_display_name("check-event")
        with dsl.ParallelFor(found.outputs["events"], parallelism=max_concurrency) as value:
            args_in = dict(given)
            if event_param:
                args_in[event_param] = value
            inner(**args_in)

    kinds = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool, "STRING": str}
    params = []
    for n in names:
        d = inputs[n]
        ann = kinds.get(str(d.get("parameterType")), str)
        default = d.get("defaultValue", inspect.Parameter.empty)
        if ann is int and isinstance(default, float):
            default = int(default)
        params.append(
            inspect.Parameter(
                n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=ann
            )
        )
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__name__ = f"{prepared.name}-on-event"
    pipeline = dsl.pipeline(
        name=f"{prepared.name}-on-event",
        description=f"workbench trigger: runs {prepared.name} once per {event} event",
    )(body)
    return compile_to_text(pipeline)
