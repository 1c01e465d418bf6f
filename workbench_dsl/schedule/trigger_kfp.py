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

A ``drift:ENDPOINT`` event has its own check step, :func:`check_drift`, on the runtime image
(``[cluster] runtime_image``): it judges the requests KServe's payload logger stored in the
window against the serving model's training data with the local statistics
(``backends/drift/cluster.py``) and emits the endpoint's name when they drifted.

(No ``from __future__ import annotations`` here: KFP reads the check step's annotations
as types.)
"""

import inspect
from dataclasses import dataclass
from typing import Any, NamedTuple

from workbench_dsl.schedule.events import DatasetEvent, DriftEvent, Event
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


def check_drift(
    endpoint: str,
    cron: str,
    schedule_time: str,
    log_uri: str,
    namespace: str,
    tracking_uri: str,
    psi: float,
    p_value: float,
    features: int,
    min_requests: int,
    window_s: float,
) -> NamedTuple(  # type: ignore[valid-type]
    "Outputs", [("events", list), ("drifted_features", list), ("drifted_features_text", str)]
):
    """``[endpoint]`` when the requests it logged in this tick's window drifted, else ``[]``,
    and the drifted features (a list, and comma-separated). Runs inside the KFP step, on the
    runtime image that holds workbench_dsl."""
    from collections import namedtuple

    from workbench_dsl.backends.drift.cluster import drifted_events
    from workbench_dsl.backends.drift.stats import Thresholds

    found, drifted = drifted_events(
        endpoint,
        cron=cron,
        schedule_time=schedule_time,
        log_uri=log_uri,
        namespace=namespace,
        tracking_uri=tracking_uri or None,
        thresholds=Thresholds(
            psi=psi, p_value=p_value, features=features, min_requests=min_requests
        ),
        window_s=window_s or None,
    )
    Outputs = namedtuple("Outputs", ["events", "drifted_features", "drifted_features_text"])
    return Outputs(found, drifted, ",".join(drifted))


@dataclass(frozen=True)
class DriftCheckSettings:
    """What the drift check step needs from ``workbench.toml``."""

    #: ``[cluster] request_log_uri``: where KServe's payload logger stores requests.
    log_uri: str
    #: ``[registry] cluster_tracking_uri``: the MLflow server holding the model versions.
    tracking_uri: str
    #: ``[cluster] runtime_image``: the image with workbench_dsl the step runs in.
    image: str
    #: ``[cluster] namespace`` (empty: the step pod's own, where the endpoints are deployed).
    namespace: str = ""
    #: ``[cluster] artifact_store``: the S3 endpoint of ``minio://`` training data.
    artifact_store: str = ""
    #: ``[cluster] artifact_secret``: the Secret (``accesskey``/``secretkey``) the step reads
    #: object stores with, as launcher steps do; empty: the pod's own identity.
    artifact_secret: str = ""


def drift_settings(source_file: str | None) -> DriftCheckSettings:
    """The drift check's settings from the pipeline's ``workbench.toml`` (the one nearest to
    ``source_file``, else to the working directory); one line naming a missing setting."""
    from pathlib import Path

    from workbench_dsl.backends.deployer._kserve_logger import check_uri
    from workbench_dsl.config import load_config
    from workbench_dsl.errors import UsageError

    config = load_config(Path(source_file).parent if source_file else Path.cwd())
    toml = str(config.path) if config.path else "workbench.toml"
    log_uri = config.get("cluster", "request_log_uri")
    if not log_uri:
        raise UsageError(
            f"drift: on KFP reads the endpoint's requests as KServe's payload logger stores "
            f'them: set [cluster] request_log_uri = "s3://BUCKET/PREFIX" in {toml} and deploy '
            f"the endpoint again (see docs/triggers.md)"
        )
    bad = check_uri(str(log_uri))
    if bad:
        raise UsageError(f"{toml}: {bad}")
    tracking_uri = config.get("registry", "cluster_tracking_uri")
    if not tracking_uri:
        raise UsageError(
            f"drift: on KFP finds the model's training data in the MLflow registry the "
            f"cluster's steps use: set [registry] cluster_tracking_uri in {toml}"
        )
    return DriftCheckSettings(
        log_uri=str(log_uri),
        tracking_uri=str(tracking_uri),
        image=config.runtime_image,
        namespace=str(config.get("cluster", "namespace") or ""),
        artifact_store=str(config.get("cluster", "artifact_store") or ""),
        artifact_secret=str(config.get("cluster", "artifact_secret") or ""),
    )


def _drift_check(event: DriftEvent, cron: str, settings: DriftCheckSettings) -> Any:
    from kfp import dsl

    check = dsl.component(base_image=settings.image)(check_drift)
    task = check(
        endpoint=event.endpoint,
        cron=cron,
        schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
        log_uri=settings.log_uri,
        namespace=settings.namespace,
        tracking_uri=settings.tracking_uri,
        psi=event.psi,
        p_value=event.p_value,
        features=event.features,
        min_requests=event.min_requests,
        window_s=float(event.window_s or 0.0),
    )
    if settings.artifact_store:
        from workbench_dsl.backends.trainer.artifacts import ENDPOINT

        task.set_env_variable(ENDPOINT, settings.artifact_store)
    if settings.artifact_secret:
        from kfp import kubernetes

        # The same keys as the launchers' (dsl/_cluster.py, use_artifact_secret).
        kubernetes.use_secret_as_env(
            task,
            secret_name=settings.artifact_secret,
            secret_key_to_env={
                "accesskey": "AWS_ACCESS_KEY_ID",
                "secretkey": "AWS_SECRET_ACCESS_KEY",
            },
        )
    return task


def wrapper_pipeline(
    prepared: PreparedPipeline,
    event: Event,
    *,
    cron: str,
    event_param: str | None,
    max_catchup: int,
    max_concurrency: int,
    kfp_host: str = "",
    drift: DriftCheckSettings | None = None,
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
    if isinstance(event, DriftEvent) and drift is None:
        raise ValueError("a drift: event needs DriftCheckSettings")
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
    # A drift: event also fills the ``endpoint`` and ``drifted_features`` inputs, as locally
    # (``-p`` values win).
    filled: set[str] = {event_param} if event_param else set()
    if isinstance(event, DriftEvent):
        filled |= {"endpoint", "drifted_features"} & set(inputs) - set(prepared.params)
    names = [n for n in inputs if n not in filled]

    def body(*args: Any) -> None:
        given = dict(zip(names, args, strict=True))
        if isinstance(event, DriftEvent):
            assert drift is not None
            found = _drift_check(event, cron, drift)
        else:
            found = check(
                event=str(event),
                cron=cron,
                schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
                max_events=max_catchup,
                kfp_host=kfp_host,
            )
        found.set_display_name("check-event")
        with dsl.ParallelFor(found.outputs["events"], parallelism=max_concurrency) as value:
            args_in = dict(given)
            for n in filled:
                args_in[n] = value
            if "drifted_features" in filled:
                list_typed = inputs["drifted_features"].get("parameterType") == "LIST"
                out = "drifted_features" if list_typed else "drifted_features_text"
                args_in["drifted_features"] = found.outputs[out]
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
