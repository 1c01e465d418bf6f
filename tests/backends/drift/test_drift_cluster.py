"""The check step of a ``drift:`` trigger on KFP, run in-process on what a cluster would hold.

The payloads are written where and as KServe's payload logger writes them in storage mode
(kserve/kserve ``pkg/logger/store.go`` for the key, ``types.go`` and Go's ``encoding/json``
for the body, ``marshaller_json.go``: one object per batch of one), under a local fsspec
folder standing in for the bucket; the model version and its ``workbench.training_data``
tags are in a real SQLite MLflow registry. The function called is the step's own
(``schedule.trigger_kfp.check_drift``).

(No ``from __future__ import annotations``: KFP reads the test pipeline's annotations as types.)
"""

import base64
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench_dsl.backends.registry import open_registry
from workbench_dsl.schedule.trigger_kfp import check_drift

NS, ENDPOINT, MODEL = "ml", "churn", "models:/churn/1"
TICK = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _go_url(scheme: str, host: str, path: str) -> dict[str, Any]:
    """A ``*url.URL`` as Go's encoding/json writes it (the struct's exported fields)."""
    return {
        "Scheme": scheme,
        "Opaque": "",
        "User": None,
        "Host": host,
        "Path": path,
        "RawPath": "",
        "OmitHost": False,
        "ForceQuery": False,
        "RawQuery": "",
        "Fragment": "",
        "RawFragment": "",
    }


def _log_request(kind: str, rid: str, body: bytes, when: datetime | None) -> dict[str, Any]:
    """One ``LogRequest`` as the agent's JSON marshaller stores it (field order and omitempty
    as in pkg/logger/types.go; ``occurrenceTime`` only from KServe 0.18 on)."""
    rec: dict[str, Any] = {
        "url": _go_url("s3", "ml-logs", "/requests"),
        "bytes": base64.b64encode(body).decode(),  # a []byte: base64, std encoding
        "contentType": "application/json",
        "reqType": f"org.kubeflow.serving.inference.{kind}",
        "id": rid,
        "sourceUri": _go_url("", "", f"{ENDPOINT}-predictor-00001-deployment-7d9f"),
        "inferenceService": ENDPOINT,
        "namespace": NS,
        "component": "predictor",
        "endpoint": "default",
        "annotations": {"workbench.dev/model-uri": MODEL},
    }
    if when is not None:
        rec["occurrenceTime"] = when.isoformat().replace("+00:00", "Z")
    return rec


def _log(
    bucket: Path, rows: np.ndarray, minutes_before: float, v2: bool, new: bool, tick: datetime
) -> None:
    """One request (and its response) of ``rows``, stored ``minutes_before`` the tick."""
    if v2:
        data = rows.ravel().tolist()
        shape = list(rows.shape)
        body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": data}]}
    else:
        body = {"instances": rows.tolist()}
    raw = json.dumps(body).encode()
    rid = str(uuid.uuid4())
    folder = bucket / "requests" / NS / ENDPOINT / "predictor" / "payloads"
    folder.mkdir(parents=True, exist_ok=True)
    t = tick.timestamp() - minutes_before * 60
    when = datetime.fromtimestamp(t, UTC) if new else None
    for kind, payload in (("request", raw), ("response", b'{"predictions": [0]}')):
        path = folder / f"{rid}-{kind}.json"
        # Go's json.Marshal writes compact JSON with no trailing newline.
        path.write_text(json.dumps(_log_request(kind, rid, payload, when), separators=(",", ":")))
        os.utime(path, (t, t))


def _traffic(
    bucket: Path,
    shift: float,
    n: int = 12,
    seed: int = 1,
    minutes: float = 10,
    tick: datetime = TICK,
) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        size = rng.normal(10 + shift, 2, 10)
        colour = rng.choice([0, 1, 2], 10, p=[0.5, 0.3, 0.2]).astype(float)
        rows = np.column_stack([size, colour])
        _log(bucket, rows, minutes, v2=i % 2 == 0, new=i % 3 == 0, tick=tick)


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, Any]:
    """A training table, a registry whose version is tagged with it, and an empty bucket."""
    rng = np.random.default_rng(0)
    table = tmp_path / "artifacts" / "data.csv"
    table.parent.mkdir()
    pd.DataFrame(
        {
            "size": rng.normal(10, 2, 1000),
            "colour": rng.choice([0, 1, 2], 1000, p=[0.5, 0.3, 0.2]),
            "label": rng.integers(0, 2, 1000),
        }
    ).to_csv(table, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = open_registry(uri)
    client = registry.client  # type: ignore[attr-defined]
    client.create_registered_model("churn")
    client.create_model_version(
        "churn",
        source=str(tmp_path / "model"),
        tags={"workbench.training_data": str(table), "workbench.training_data.label": "label"},
    )
    return {"bucket": tmp_path / "bucket", "tracking_uri": uri, "tmp": tmp_path}


def _check(c: dict[str, Any], **over: Any) -> Any:
    args = {
        "endpoint": ENDPOINT,
        "cron": "*/15 * * * *",
        "schedule_time": TICK.isoformat().replace("+00:00", "Z"),
        "log_uri": f"{c['bucket']}/requests",
        "namespace": NS,
        "tracking_uri": c["tracking_uri"],
        "psi": 0.2,
        "p_value": 0.01,
        "features": 1,
        "min_requests": 50,
        "window_s": 0.0,
        **over,
    }
    return check_drift(**args)


def test_drifted_traffic_in_the_window_emits_the_endpoint_once(
    cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _traffic(cluster["bucket"], shift=6.0)
    # A torn object (an upload cut short) is counted and skipped, never fatal.
    torn = cluster["bucket"] / "requests" / NS / ENDPOINT / "predictor" / "payloads"
    (torn / "torn-request.json").write_text('{"bytes": "eyJpbnN0')
    t = TICK.timestamp() - 60
    os.utime(torn / "torn-request.json", (t, t))
    out = _check(cluster)
    assert "1 stored request(s)" in capsys.readouterr().out
    assert out.events == [ENDPOINT]
    assert out.drifted_features == ["size"] and out.drifted_features_text == "size"


def test_traffic_like_the_training_data_runs_nothing(cluster: dict[str, Any]) -> None:
    _traffic(cluster["bucket"], shift=0.0)
    out = _check(cluster)
    assert out.events == [] and out.drifted_features == []


def test_only_the_window_counts(cluster: dict[str, Any]) -> None:
    # Drifted requests logged before the previous tick belong to an earlier window.
    _traffic(cluster["bucket"], shift=6.0, minutes=20)
    assert _check(cluster).events == []  # too few in [11:45, 12:00): no verdict
    # ... unless --threshold since= widens the window to cover them.
    assert _check(cluster, window_s=3600.0).events == [ENDPOINT]
    # and thresholds apply as locally: 120 instances are fewer than requests=500.
    assert _check(cluster, window_s=3600.0, min_requests=500).events == []


def test_a_model_version_without_its_training_data_fails_the_step(
    cluster: dict[str, Any],
) -> None:
    from workbench_dsl.backends.drift.report import DriftError

    client = open_registry(cluster["tracking_uri"]).client  # type: ignore[attr-defined]
    client.delete_model_version_tag("churn", "1", "workbench.training_data")
    _traffic(cluster["bucket"], shift=6.0)
    with pytest.raises(DriftError, match=r"has no workbench\.training_data tag"):
        _check(cluster)


@pytest.mark.slow
def test_the_compiled_wrapper_runs_the_pipeline_for_a_drifted_window_only(
    cluster: dict[str, Any], workbench_home: Path
) -> None:
    """The wrapper YAML `trigger add --target kfp` submits, run by the local engine (which
    executes the compiled PipelineSpec, the run's schedule time being its start)."""
    from kfp import compiler, dsl

    from workbench_dsl.local_run import run
    from workbench_dsl.schedule.events import parse_event, parse_threshold
    from workbench_dsl.schedule.pipeline_ref import prepare
    from workbench_dsl.schedule.trigger_kfp import DriftCheckSettings, wrapper_pipeline

    @dsl.component(base_image="python:3.11")
    def note(endpoint: str, drifted_features: list) -> str:
        return f"{endpoint}: {','.join(drifted_features)}"

    @dsl.pipeline(name="retrain")
    def retrain(endpoint: str, drifted_features: list) -> None:
        note(endpoint=endpoint, drifted_features=drifted_features)

    inner = cluster["tmp"] / "retrain.yaml"
    compiler.Compiler().compile(retrain, str(inner))
    samples = {"endpoint": "x", "drifted_features": '["x"]'}
    prepared = prepare(str(inner), {}, event_inputs=lambda _: samples)
    wrapper = cluster["tmp"] / "retrain-on-event.yaml"
    wrapper.write_text(
        wrapper_pipeline(
            prepared,
            parse_threshold(parse_event(f"drift:{ENDPOINT}"), ["since=1h"]),
            cron="0 * * * *",
            event_param=None,
            max_catchup=5,
            max_concurrency=1,
            drift=DriftCheckSettings(
                log_uri=f"{cluster['bucket']}/requests",
                tracking_uri=cluster["tracking_uri"],
                image="registry.example/workbench:0.1.0",
                namespace=NS,
            ),
        )
    )

    def notes(result: Any) -> list[str]:
        assert result.ok, result.error
        return [t["status"] for t in result.tasks if t["name"].endswith("note")]

    now = datetime.now(UTC)
    _traffic(cluster["bucket"], shift=0.0, minutes=2, tick=now)
    assert notes(run(wrapper, cache=False)) == []  # like the training data: nothing runs
    _traffic(cluster["bucket"], shift=8.0, n=40, seed=2, minutes=1, tick=now)
    assert notes(run(wrapper, cache=False)) == ["SUCCEEDED"]
