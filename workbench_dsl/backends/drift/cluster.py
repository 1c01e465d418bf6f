"""Drift of an InferenceService on a cluster: its stored payloads against its model's training data.

What the ``check-event`` step of a ``drift:`` trigger on KFP runs (``schedule/trigger_kfp.py``),
in the runtime image, with the same statistics and thresholds as the local report:

* **the requests**: the objects KServe's payload logger stored for the endpoint
  (``backends/deployer/_kserve_logger.py`` says where and in what format) whose modification
  time falls in the window. Each ``*-request.json`` holds the agent's ``LogRequest``: the
  HTTP body in ``bytes`` (base64), decoded here the way KServe's model server decodes it
  (``InferRequest.from_bytes`` and ``get_predict_input`` for protocol v2, ``instances`` for
  v1), and the serving model version in ``annotations["workbench.dev/model-uri"]``;
* **the training data**: the model version's ``workbench.training_data`` tag, which the
  ``@register`` step records (``runtime/_training_data.py``), read through the MLflow
  tracking server the cluster's steps use; the table is read through fsspec (``minio://``
  as KFP names its MinIO bucket, ``s3://``, ``gs://``);
* **the verdict**: :func:`.report.compare_logged` per feature, then the same ``features``
  and ``min_requests`` rules.

When the window holds requests answered by several model versions (a canary), the version
that answered most of them is judged.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench_dsl.backends.deployer._kserve_manifest import MODEL_URI_ANNOTATION
from workbench_dsl.backends.drift.reference import Reference, ReferenceNotFound, load_frame
from workbench_dsl.backends.drift.report import (
    MAX_INSTANCES,
    DriftError,
    DriftReport,
    TooFewRequests,
    compare_logged,
)
from workbench_dsl.backends.drift.stats import Thresholds

#: The model version tag that names the version's training data (set by ``@register``).
TRAINING_DATA_TAG = "workbench.training_data"
REQUEST_SUFFIX = "-request.json"
#: Objects fetched per call (KServe stores one object per request).
FETCH_BATCH = 256


@dataclass(frozen=True)
class Logged:
    """One logged request: when, which model version answered, its instances."""

    t: float
    model_uri: str | None
    rows: list[Any]
    names: list[str] | None = None


@dataclass
class Payloads:
    """What the window's stored payloads held."""

    requests: list[Logged] = field(default_factory=list)
    unreadable: int = 0


def _mtime(info: dict[str, Any]) -> float | None:
    when = info.get("mtime") or info.get("LastModified") or info.get("updated")
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if isinstance(when, datetime):
        return when.timestamp()
    return float(when) if isinstance(when, int | float) else None


def instances(body: bytes) -> tuple[list[Any], list[str] | None]:
    """The instances of a V1 or V2 REST request body, as KServe's model server reads them."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the request body is not a JSON object")
    inputs = data.get("inputs")
    v2 = isinstance(inputs, list) and all(isinstance(i, dict) and "datatype" in i for i in inputs)
    if v2 and inputs:
        from kserve.protocol.infer_type import InferRequest
        from kserve.utils.utils import get_predict_input

        values = get_predict_input(InferRequest.from_bytes(body, len(body), "model"))
        if hasattr(values, "columns"):  # a pandas DataFrame: named columns
            return values.to_numpy().tolist(), [str(c) for c in values.columns]
        rows = values.tolist() if hasattr(values, "tolist") else list(values)
        return rows, None
    found = data.get("instances", inputs)
    if not isinstance(found, list):
        raise ValueError('the request body has no "instances" (v1) or "inputs" (v2) list')
    return found, None


def _records(text: bytes) -> list[dict[str, Any]]:
    data = json.loads(text)
    # One object for a batch of one (the default), an array for larger batches.
    items = data if isinstance(data, list) else [data]
    return [r for r in items if isinstance(r, dict)]


def read_payloads(prefix: str, start: float, end: float) -> Payloads:
    """The requests stored under ``prefix`` whose objects were written in ``[start, end)``,
    newest first up to :data:`MAX_INSTANCES` instances, then oldest first."""
    import fsspec

    # The bucket KServe writes to is read as any fsspec URL (credentials and endpoint from the
    # pod's environment); only the training data is a KFP artifact (``minio://``).
    fs, path = fsspec.core.url_to_fs(prefix)
    try:
        listing = fs.find(path, detail=True)
    except FileNotFoundError:
        listing = {}
    found: list[tuple[float, str]] = []
    for name, info in listing.items():
        if not str(name).endswith(REQUEST_SUFFIX) or info.get("type") not in (None, "file"):
            continue
        t = _mtime(info)
        if t is not None and start <= t < end:
            found.append((t, str(name)))
    out = Payloads()
    seen = 0
    newest = sorted(found, reverse=True)
    for i in range(0, len(newest), FETCH_BATCH):
        batch = newest[i : i + FETCH_BATCH]
        # One call per batch: object stores fetch them concurrently (s3fs, gcsfs are async).
        texts = fs.cat([name for _, name in batch], on_error="return")
        for t, name in batch:
            try:
                text = texts.get(name)
                if not isinstance(text, bytes | str):
                    raise OSError(f"cannot read {name}: {text!r}")
                records = _records(text if isinstance(text, bytes) else text.encode())
            except (OSError, ValueError):
                out.unreadable += 1
                continue
            for rec in records:
                if not str(rec.get("reqType", "")).endswith(".request"):
                    continue
                try:
                    body = base64.b64decode(rec.get("bytes") or "")
                    rows, names = instances(body)
                except Exception:  # a body the model server would refuse as well
                    out.unreadable += 1
                    continue
                model = (rec.get("annotations") or {}).get(MODEL_URI_ANNOTATION)
                out.requests.append(Logged(t, model, rows, names))
                seen += len(rows)
            if seen >= MAX_INSTANCES:
                out.requests.reverse()
                return out
    out.requests.reverse()
    return out


def training_reference(endpoint: str, model_uri: str, tracking_uri: str | None) -> Reference:
    """The training dataset of ``model_uri``, from its ``workbench.training_data`` tags."""
    from workbench_dsl.backends.registry import open_registry

    try:
        version = open_registry(tracking_uri).resolve(model_uri)
    except Exception as e:
        raise ReferenceNotFound(
            f"cannot read {model_uri} from the registry at {tracking_uri}: {e}"
        ) from None
    tags = version.tags
    uri = tags.get(TRAINING_DATA_TAG)
    if not uri:
        raise ReferenceNotFound(
            f"{model_uri} has no {TRAINING_DATA_TAG} tag: register it with a @register step "
            f"whose model a @train or @sweep step wrote from an Input[Dataset] (or set "
            f'model.metadata["{TRAINING_DATA_TAG}"] = data.uri in the step that wrote it)'
        )
    meta: dict[str, Any] = {}
    for key in ("features", "columns", "label", "target"):
        value = tags.get(f"{TRAINING_DATA_TAG}.{key}")
        if value is not None:
            try:
                meta[key] = json.loads(value)
            except ValueError:
                meta[key] = value
    return Reference(
        endpoint=endpoint,
        revision=model_uri,
        model_uri=model_uri,
        dataset=uri,
        version=None,
        uri=uri,
        format=tags.get(f"{TRAINING_DATA_TAG}.format"),
        metadata=meta,
        chain=[f"endpoint:{endpoint}", model_uri, f"tag {TRAINING_DATA_TAG}", uri],
    )


def read_training_frame(ref: Reference) -> Any:
    """The training table at ``ref.uri`` (an object-store URI or a local path)."""
    from workbench_dsl.backends.trainer.artifacts import filesystem

    fs, path = filesystem(ref.uri)
    if not fs.exists(path):
        raise ReferenceNotFound(f"the training dataset {ref.uri} of {ref.model_uri} is gone")
    if fs.isdir(path):
        files = [p for p in fs.find(path) if not fs.isdir(p)]
        if len(files) != 1:
            raise ReferenceNotFound(
                f"the training dataset {ref.uri} is a folder of {len(files)} files: give the "
                f"training step one file (CSV, TSV, JSON lines or Parquet)"
            )
        path = files[0]
    with tempfile.TemporaryDirectory(prefix="workbench-drift-") as tmp:
        local = Path(tmp) / Path(str(path)).name
        fs.get(path, str(local))
        return load_frame(replace(ref, uri=str(local)))


def check_window(
    endpoint: str,
    prefix: str,
    start: float,
    end: float,
    *,
    tracking_uri: str | None,
    thresholds: Thresholds,
) -> DriftReport:
    """The drift report of the requests ``endpoint`` logged in ``[start, end)``.

    Raises :class:`TooFewRequests` (no verdict) or :class:`DriftError` (no report possible).
    """
    t = thresholds
    found = read_payloads(prefix, start, end)
    counts: Counter[str | None] = Counter()
    for r in found.requests:
        counts[r.model_uri] += len(r.rows)
    total = sum(counts.values())
    if total < t.min_requests:
        raise TooFewRequests(
            f"too few logged requests for {endpoint} in the window: {total} instance(s) in "
            f"{len(found.requests)} request(s) under {prefix}, at least {t.min_requests} needed"
        )
    model_uri = max(counts, key=lambda m: (counts[m], m or ""))
    if model_uri is None:
        raise DriftError(
            f"the requests {endpoint} logged name no model version (no {MODEL_URI_ANNOTATION} "
            f"annotation in the records): redeploy it with this version of workbench"
        )
    if found.unreadable:
        print(f"{found.unreadable} stored request(s) under {prefix} could not be read", flush=True)
    chosen = [r for r in found.requests if r.model_uri == model_uri]
    rows = [row for r in chosen for row in r.rows]
    names = next((r.names for r in chosen if r.names), None)
    if len(rows) < t.min_requests:
        raise TooFewRequests(
            f"too few logged requests for {endpoint} ({model_uri}) in the window: {len(rows)} "
            f"instance(s), at least {t.min_requests} needed"
        )
    try:
        ref = training_reference(endpoint, model_uri, tracking_uri)
        frame = read_training_frame(ref)
    except ReferenceNotFound as e:
        raise DriftError(str(e)) from None
    features = compare_logged(ref, frame, rows, names, t, f"{endpoint} ({model_uri})")
    return DriftReport(
        endpoint=endpoint,
        revision=model_uri,
        since=start,
        requests=len(chosen),
        instances=len(rows),
        reference=ref,
        thresholds=t,
        features=features,
    )


def drifted_events(
    endpoint: str,
    *,
    cron: str,
    schedule_time: str,
    log_uri: str,
    namespace: str,
    tracking_uri: str | None,
    thresholds: Thresholds,
    window_s: float | None = None,
) -> tuple[list[str], list[str]]:
    """``([endpoint], drifted features)`` when the requests of this tick's window drifted,
    else ``([], [])``.

    The window is ``[previous cron tick, schedule_time)``, or the last ``window_s`` seconds
    before ``schedule_time`` (``--threshold since=``). Too few requests is no verdict (no
    event); a report that cannot be made (no training-data tag, a dataset gone) fails the
    step, so the recurring run shows why.
    """
    from datetime import UTC

    from croniter import croniter

    from workbench_dsl.backends.deployer._kserve_logger import payload_prefix
    from workbench_dsl.backends.trainer.kubernetes import current_namespace

    end = datetime.fromisoformat(schedule_time.replace("Z", "+00:00")).astimezone(UTC)
    start = (
        end.timestamp() - window_s
        if window_s
        else croniter(cron, end).get_prev(datetime).timestamp()
    )
    prefix = payload_prefix(log_uri, namespace or current_namespace(), endpoint)
    try:
        report = check_window(
            endpoint,
            prefix,
            start,
            end.timestamp(),
            tracking_uri=tracking_uri,
            thresholds=thresholds,
        )
    except TooFewRequests as e:
        print(f"no verdict: {e}", flush=True)
        return [], []
    print(json.dumps(report.to_json(), sort_keys=True), flush=True)
    if not report.drifted:
        print(f"{endpoint}: no drift in the window", flush=True)
        return [], []
    print(f"{endpoint}: drifted ({', '.join(report.drifted_features)})", flush=True)
    return [endpoint], report.drifted_features
