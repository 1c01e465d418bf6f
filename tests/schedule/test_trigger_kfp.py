"""A trigger on KFP alone: the wrapper pipeline it compiles and the check step's window."""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from kfp_api_double import KfpApiDouble
from typer.testing import CliRunner

from workbench_dsl.cli.app import app
from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.schedule.events import parse_event
from workbench_dsl.schedule.pipeline_ref import prepare
from workbench_dsl.schedule.trigger_kfp import check_event, wrapper_pipeline

runner = CliRunner()


@dsl.component(base_image="python:3.11")
def use(n: int, path: str) -> str:
    return path * n


@dsl.pipeline(name="ingest")
def ingest(n: int = 2, path: str = "") -> None:
    use(n=n, path=path)


def compiled(tmp_path: Path) -> str:
    out = tmp_path / "ingest.yaml"
    compiler.Compiler().compile(ingest, str(out))
    return str(out)


def test_wrapper_runs_the_pipeline_once_per_event_found(tmp_path: Path) -> None:
    prepared = prepare(compiled(tmp_path), {})
    text = wrapper_pipeline(
        prepared,
        parse_event("dataset:s3://bucket/landing/*.csv"),
        cron="*/15 * * * *",
        event_param="path",
        max_catchup=5,
        max_concurrency=2,
    )
    spec = PipelineSpec.parse(text)
    assert list(spec.input_definitions) == ["n"]  # the event fills `path`
    doc = yaml.safe_load(text)
    root = doc["root"]["dag"]["tasks"]
    check = root["check-event"]
    inputs = check["inputs"]["parameters"]
    assert inputs["schedule_time"]["runtimeValue"]["constant"] == (
        "{{$.pipeline_job_schedule_time_utc}}"
    )
    assert inputs["event"]["runtimeValue"]["constant"] == "dataset:s3://bucket/landing/*.csv"
    loop = next(t for name, t in root.items() if name.startswith("for-loop"))
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("check-event-events")
    assert loop["iteratorPolicy"] == {"parallelismLimit": 2}
    executor = doc["deploymentSpec"]["executors"]["exec-check-event"]["container"]
    assert executor["image"] == "python:3.11-slim"
    assert "s3fs" in " ".join(executor["command"])
    # the user's pipeline is inside, unchanged
    assert "comp-ingest" in doc["components"]


def test_check_step_lists_the_files_of_its_window_only(tmp_path: Path) -> None:
    tick = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    for name, minutes_before in (("old.csv", 20), ("a.csv", 10), ("b.csv", 1), ("x.txt", 5)):
        p = tmp_path / name
        p.write_text(name)
        t = tick.timestamp() - minutes_before * 60
        os.utime(p, (t, t))
    found = check_event(
        event=f"dataset:{tmp_path}/*.csv",
        cron="*/15 * * * *",
        schedule_time="2026-01-05T12:00:00Z",
        max_events=5,
        kfp_host="",
    )
    assert [Path(v).name for v in found.events] == ["a.csv", "b.csv"]
    newest = check_event(
        event=f"dataset:{tmp_path}/*.csv",
        cron="*/15 * * * *",
        schedule_time="2026-01-05T12:00:00Z",
        max_events=1,
        kfp_host="",
    )
    assert [Path(v).name for v in newest.events] == ["b.csv"]


def test_cli_compiles_the_wrapper_and_creates_its_recurring_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    ref = compiled(tmp_path)
    base = ["trigger", "add", ref, "--on", "run:extract:SUCCEEDED", "--event-param", "path"]
    r = runner.invoke(
        app, [*base, "--target", "kfp", "--cron", "*/15 * * * *", "--output", "w.yaml"]
    )
    assert r.exit_code == 0, r.output
    wrapper = yaml.safe_load((tmp_path / "w.yaml").read_text())
    assert wrapper["pipelineInfo"]["name"] == "ingest-on-event"
    bad = runner.invoke(
        app, [*base, "--target", "kfp", "--cron", "61 * * * *", "--output", "x.yaml"]
    )
    assert bad.exit_code == 2 and not (tmp_path / "x.yaml").exists()
    assert runner.invoke(app, [*base, "--target", "kfp", "--output", "x.yaml"]).exit_code == 2
    kfp = KfpApiDouble(stateful=True)
    try:
        r = runner.invoke(
            app,
            [
                *base,
                "-p",
                "n=4",
                "--target",
                "kfp",
                "--cron",
                "*/15 * * * *",
                "--host",
                kfp.url,
                "--name",
                "ingest-after-extract",
                "--json",
            ],
        )
        assert r.exit_code == 0, r.output
        body = next(
            q["body"] for q in kfp.requests if q["method"] == "POST" and "recurring" in q["path"]
        )
        assert body["display_name"] == "ingest-after-extract"
        assert body["trigger"] == {"cron_schedule": {"cron": "0 */15 * * * *"}}
        assert body["runtime_config"] == {"parameters": {"n": 4}}
        assert body["pipeline_spec"]["pipelineInfo"]["name"] == "ingest-on-event"
        assert kfp.violations == []
    finally:
        kfp.close()
