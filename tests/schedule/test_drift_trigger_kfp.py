"""``trigger add --on drift:ENDPOINT --target kfp``: the wrapper pipeline KFP runs, as KFP reads it."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from typer.testing import CliRunner

from workbench_dsl.cli.app import app
from workbench_dsl.compile.cluster.kfp import check_pipeline
from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.schedule.events import parse_event, parse_threshold
from workbench_dsl.schedule.pipeline_ref import prepare
from workbench_dsl.schedule.trigger_kfp import DriftCheckSettings, wrapper_pipeline

runner = CliRunner()
TOML = """
[cluster]
runtime_image = "registry.example/workbench:0.1.0"
request_log_uri = "s3://ml-logs/requests"
artifact_store = "http://minio.ml:9000"
artifact_secret = "minio-creds"

[registry]
cluster_tracking_uri = "http://mlflow.ml:5000"
"""


@dsl.component(base_image="python:3.11")
def retrain(n: int, endpoint: str, drifted_features: list) -> str:
    return endpoint * n + str(drifted_features)


@dsl.pipeline(name="retrain")
def retrain_pipeline(endpoint: str, drifted_features: list, n: int = 1) -> None:
    retrain(n=n, endpoint=endpoint, drifted_features=drifted_features)


def compiled(tmp_path: Path) -> str:
    out = tmp_path / "retrain.yaml"
    compiler.Compiler().compile(retrain_pipeline, str(out))
    return str(out)


def test_the_wrapper_checks_the_window_and_passes_the_endpoint_and_features(
    tmp_path: Path,
) -> None:
    # What the CLI does: the inputs the event fills are checked with sample values.
    samples = {"endpoint": "x", "drifted_features": '["x"]'}
    prepared = prepare(compiled(tmp_path), {}, event_inputs=lambda _: samples)
    event = parse_threshold(parse_event("drift:churn"), ["psi=0.3,requests=100,since=1h"])
    text = wrapper_pipeline(
        prepared,
        event,
        cron="*/15 * * * *",
        event_param=None,
        max_catchup=5,
        max_concurrency=1,
        drift=DriftCheckSettings(
            log_uri="s3://ml-logs/requests",
            tracking_uri="http://mlflow.ml:5000",
            image="registry.example/workbench:0.1.0",
        ),
    )
    docs = list(yaml.safe_load_all(text))
    assert check_pipeline(docs) == []
    assert list(PipelineSpec.parse(text).input_definitions) == ["n"]  # the event fills the rest
    doc = docs[0]
    tasks = doc["root"]["dag"]["tasks"]
    check = tasks["check-drift"]
    assert check["taskInfo"]["name"] == "check-event"
    given = {k: v["runtimeValue"]["constant"] for k, v in check["inputs"]["parameters"].items()}
    assert given == {
        "endpoint": "churn",
        "cron": "*/15 * * * *",
        "schedule_time": "{{$.pipeline_job_schedule_time_utc}}",
        "log_uri": "s3://ml-logs/requests",
        "namespace": "",
        "tracking_uri": "http://mlflow.ml:5000",
        "psi": 0.3,
        "p_value": 0.01,
        "features": 1,
        "min_requests": 100,
        "window_s": 3600.0,
    }
    executor = doc["deploymentSpec"]["executors"]["exec-check-drift"]["container"]
    assert executor["image"] == "registry.example/workbench:0.1.0"
    assert (
        "from workbench_dsl.backends.drift.cluster import drifted_events"
        in (executor["command"][-1])
    )
    loop_name = next(n for n in tasks if n.startswith("for-loop"))
    loop = tasks[loop_name]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("check-drift-events")
    inner = doc["components"][loop["componentRef"]["name"]]["dag"]["tasks"]["retrain"]
    wired = inner["inputs"]["parameters"]
    assert wired["endpoint"]["componentInputParameter"].endswith("loop-item")
    assert wired["drifted_features"]["componentInputParameter"].endswith(
        "check-drift-drifted_features"
    )


def test_cli_needs_the_request_log_and_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ref = compiled(tmp_path)
    args = ["trigger", "add", ref, "--on", "drift:churn", "--target", "kfp"]
    args += ["--cron", "*/15 * * * *", "--output", "w.yaml"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "set [cluster] request_log_uri" in r.output, r.output
    assert not (tmp_path / "w.yaml").exists()
    (tmp_path / "workbench.toml").write_text(TOML.replace("[registry]\n", "[registry]\n#"))
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "set [registry] cluster_tracking_uri" in r.output, r.output
    (tmp_path / "workbench.toml").write_text(TOML)
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    wrapper = list(yaml.safe_load_all((tmp_path / "w.yaml").read_text()))
    assert check_pipeline(wrapper) == []
    # The check step reads object stores with the launchers' credentials and endpoint.
    check = wrapper[0]["deploymentSpec"]["executors"]["exec-check-drift"]["container"]
    assert {"name": "WORKBENCH_ARTIFACT_ENDPOINT", "value": "http://minio.ml:9000"} in check["env"]
    k8s = wrapper[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-check-drift"]
    assert k8s["secretAsEnv"][0]["secretName"] == "minio-creds"
    assert wrapper[0]["pipelineInfo"]["name"] == "retrain-on-event"
