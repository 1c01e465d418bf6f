"""OpenLineage events for a run: spec-valid, linked to the pipeline run, stable dataset names,
and the facets the issue asks for (schema, counts, model version, sweep result, source)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from ol_schema import validate_event

from workbench_dsl.backends.lineage import LineageRecorder, load_settings
from workbench_dsl.backends.lineage import facets as F
from workbench_dsl.paths import local_root

LAUNCHER_PROGRAM = """
import kfp
from kfp import dsl
from kfp.dsl import *
from typing import *

def predict(model_uri: str) -> NamedTuple('Outputs', [('url', str), ('revision', str)]):
    _workbench_arguments = dict(locals())
    from workbench_dsl.runtime.serve import launch
    return launch('def predict(model, instances):\\n    return model.predict(instances)\\n', 'predict', '{"canary_percent":10,"endpoint":"churn"}', _workbench_arguments)
"""


def _artifact(path: Path, digest: str, kind: str = "system.Dataset") -> dict[str, Any]:
    return {
        "uri": str(path),
        "sha256": digest,
        "size": path.stat().st_size,
        "type": kind,
        "metadata": {"rows": 3},
    }


def simulate(
    rec: LineageRecorder, run_id: str, tmp: Path, *, digest: str = "a" * 64, fail_fit: bool = False
) -> None:
    """A run: load -> sweep -> fit -> register -> deploy, as the engine's observer reports it."""
    data = tmp / f"data-{run_id}.csv"
    data.write_text("age,plan,churned\n31,basic,true\n45,pro,false\n22,basic,false\n")
    model = tmp / f"model-{run_id}.pkl"
    model.write_bytes(b"\x80\x04model")
    d = _artifact(data, digest)
    m = _artifact(model, "b" * 64, "system.Model")
    rec.run_started(run_id, "churn", {"rows": 3}, nominal_time="2024-01-07T03:00:00Z")
    rec.task_started(
        run_id, "load", inputs={"parameters": {"rows": 3}}, source="def load(rows: int): ..."
    )
    rec.task_finished(
        run_id,
        "load",
        status="SUCCEEDED",
        inputs={"parameters": {"rows": 3}},
        outputs={"artifacts": {"data": [d]}},
        source="def load(rows: int): ...",
        attempt=1,
    )
    rec.task_finished(
        run_id,
        "sweep",
        status="SUCCEEDED",
        cached=True,
        inputs={"artifacts": {"data": [d]}},
        outputs={"parameters": {"best_params": {"depth": 4, "lr": 0.1}, "best_value": 0.93}},
    )
    rec.task_started(run_id, "fit", inputs={"artifacts": {"data": [d]}})
    if fail_fit:
        rec.task_finished(
            run_id,
            "fit",
            status="FAILED",
            error="ValueError: bad data",
            attempt=2,
            inputs={"artifacts": {"data": [d]}},
        )
        rec.run_finished(run_id, "FAILED", error="fit: ValueError: bad data")
        return
    rec.task_finished(
        run_id,
        "fit",
        status="SUCCEEDED",
        inputs={"artifacts": {"data": [d]}},
        outputs={"artifacts": {"model": [m]}},
        attempt=1,
    )
    rec.task_finished(
        run_id,
        "register",
        status="SUCCEEDED",
        inputs={"artifacts": {"model": [m], "data": [d]}},
        outputs={"parameters": {"promoted": True, "version": "3", "model_uri": "models:/churn/3"}},
    )
    rec.task_started(
        run_id,
        "predict",
        inputs={"parameters": {"model_uri": "models:/churn/3"}},
        source=LAUNCHER_PROGRAM,
    )
    rec.task_finished(
        run_id,
        "predict",
        status="SUCCEEDED",
        source=LAUNCHER_PROGRAM,
        inputs={"parameters": {"model_uri": "models:/churn/3"}},
        outputs={
            "parameters": {"url": "http://127.0.0.1:8111/v2/models/churn/infer", "revision": "r1"}
        },
    )
    rec.run_finished(run_id, "SUCCEEDED")


def events() -> list[dict[str, Any]]:
    path = local_root().lineage_events
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_job(evs: list[dict[str, Any]], job: str, etype: str) -> dict[str, Any]:
    return next(e for e in evs if e["job"]["name"] == job and e["eventType"] == etype)


def test_every_event_validates_against_the_openlineage_schema(tmp_path: Path) -> None:
    rec = LineageRecorder()
    simulate(rec, "run1", tmp_path)
    simulate(rec, "run2", tmp_path, fail_fit=True)
    assert rec.flush()
    evs = events()
    seen: set[str] = set()
    for e in evs:
        seen.update(validate_event(e))
    assert {
        "parent",
        "schema",
        "outputStatistics",
        "inputStatistics",
        "version",
        "sourceCode",
        "workbench_model_version",
        "workbench_sweep",
        "workbench_endpoint",
        "errorMessage",
        "nominalTime",
        "processing_engine",
        "executionParameters",
        "jobType",
        "workbench_task",
    } <= seen
    # START and a terminal event for the pipeline run and each task that ran
    types = [
        (e["job"]["name"], e["eventType"]) for e in evs if e["run"]["runId"] == F.run_uuid("run1")
    ]
    assert types == [("churn", "START"), ("churn", "COMPLETE")]
    assert ("churn.fit", "FAIL") in [(e["job"]["name"], e["eventType"]) for e in evs]
    assert [e["eventType"] for e in evs if e["run"]["runId"] == F.run_uuid("run2")] == [
        "START",
        "FAIL",
    ]


def test_tasks_link_to_the_pipeline_run_with_the_parent_facet(tmp_path: Path) -> None:
    rec = LineageRecorder()
    simulate(rec, "run1", tmp_path)
    rec.flush()
    fit = by_job(events(), "churn.fit", "COMPLETE")
    parent = fit["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == F.run_uuid("run1")
    assert parent["job"] == {"namespace": "workbench", "name": "churn"}
    assert uuid.UUID(fit["run"]["runId"]) == uuid.UUID(F.run_uuid("run1", "fit"))
    # the cached sweep task still gets START + COMPLETE, marked cached
    sweep = by_job(events(), "churn.sweep", "COMPLETE")
    assert sweep["run"]["facets"]["workbench_task"]["cached"] is True


def test_dataset_names_are_stable_across_runs_and_versioned_by_content(tmp_path: Path) -> None:
    rec = LineageRecorder()
    simulate(rec, "run1", tmp_path, digest="1" * 64)
    simulate(rec, "run2", tmp_path, digest="2" * 64)
    rec.flush()
    loads = [
        e for e in events() if e["job"]["name"] == "churn.load" and e["eventType"] == "COMPLETE"
    ]
    names = {(o["namespace"], o["name"]) for e in loads for o in e["outputs"]}
    assert names == {("workbench", "churn/load/data")}
    versions = [e["outputs"][0]["facets"]["version"]["datasetVersion"] for e in loads]
    assert versions == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    # the consumer names its input after the producer, not after the file
    fit = by_job(events(), "churn.fit", "COMPLETE")
    assert [(i["namespace"], i["name"]) for i in fit["inputs"]] == [
        ("workbench", "churn/load/data")
    ]


def test_facets_schema_counts_model_version_sweep_endpoint_source(tmp_path: Path) -> None:
    rec = LineageRecorder()
    simulate(rec, "run1", tmp_path)
    rec.flush()
    evs = events()
    out = by_job(evs, "churn.load", "COMPLETE")["outputs"][0]
    assert [(f["name"], f["type"]) for f in out["facets"]["schema"]["fields"]] == [
        ("age", "int"),
        ("plan", "string"),
        ("churned", "boolean"),
    ]
    stats = out["outputFacets"]["outputStatistics"]
    assert stats["rowCount"] == 3 and stats["size"] > 0 and stats["fileCount"] == 1
    reg = by_job(evs, "churn.register", "COMPLETE")
    mv = reg["run"]["facets"]["workbench_model_version"]
    assert (mv["name"], mv["version"], mv["uri"], mv["promoted"]) == (
        "churn",
        "3",
        "models:/churn/3",
        True,
    )
    assert {"namespace": "workbench", "name": "models:/churn"}.items() <= reg["outputs"][0].items()
    assert reg["outputs"][0]["facets"]["version"]["datasetVersion"] == "3"
    sweep = by_job(evs, "churn.sweep", "COMPLETE")["run"]["facets"]["workbench_sweep"]
    assert sweep["bestParams"] == {"depth": 4, "lr": 0.1} and sweep["bestValue"] == 0.93
    dep = by_job(evs, "churn.predict", "COMPLETE")
    # the launcher's own config names the endpoint; its job shows the user's function
    assert dep["outputs"][0]["name"] == "endpoint:churn"
    assert dep["outputs"][0]["facets"]["workbench_endpoint"]["modelUri"] == "models:/churn/3"
    assert dep["job"]["facets"]["sourceCode"]["sourceCode"].startswith(
        "def predict(model, instances)"
    )
    assert dep["run"]["facets"]["workbench_task"]["launcher"] == "serve"
    assert [i["name"] for i in dep["inputs"]] == ["models:/churn"]


def test_notes_from_the_step_win_over_inference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench_dsl.backends.lineage import note_endpoint, note_model_version

    run_dir = tmp_path / "rundir"
    monkeypatch.setenv("WORKBENCH_RUN_DIR", str(run_dir))
    monkeypatch.setenv("WORKBENCH_TASK", "deploy-2[0]/ship")
    note_model_version("churn", 7, alias="staging", promoted=True)
    note_endpoint("churn-eu", url="http://127.0.0.1:9/", revision="r7", model_uri="models:/churn/7")
    rec = LineageRecorder()
    rec.run_started("r", "p")
    rec.task_finished(
        "r",
        "deploy-2[0]/ship",
        status="SUCCEEDED",
        notes_dir=str(run_dir),
        outputs={"parameters": {"url": "http://elsewhere/"}},
    )
    rec.run_finished("r", "SUCCEEDED")
    rec.flush()
    ship = by_job(events(), "p.deploy-2[0]/ship", "COMPLETE")
    for e in events():
        validate_event(e)
    names = sorted(o["name"] for o in ship["outputs"])
    assert names == ["endpoint:churn-eu", "models:/churn"]
    assert ship["run"]["facets"]["workbench_model_version"]["alias"] == "staging"
    assert [i["name"] for i in ship["inputs"]] == ["models:/churn"]
    assert not (run_dir / "lineage-notes").exists() or not any(
        (run_dir / "lineage-notes").iterdir()
    )


def test_schema_urls_match_the_installed_openlineage_client() -> None:
    from openlineage.client.generated import (
        dataset_version_dataset,
        error_message_run,
        execution_parameters_run,
        input_statistics_input_dataset,
        job_type_job,
        nominal_time_run,
        output_statistics_output_dataset,
        parent_run,
        processing_engine_run,
        schema_dataset,
        source_code_job,
        source_code_location_job,
    )

    pairs = {
        "parent": parent_run.ParentRunFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
        "nominalTime": nominal_time_run.NominalTimeRunFacet,
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
        "executionParameters": execution_parameters_run.ExecutionParametersRunFacet,
        "jobType": job_type_job.JobTypeJobFacet,
        "sourceCode": source_code_job.SourceCodeJobFacet,
        "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet,
        "schema": schema_dataset.SchemaDatasetFacet,
        "version": dataset_version_dataset.DatasetVersionDatasetFacet,
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
        "inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet,
    }
    for key, cls in pairs.items():
        assert F.SPEC_FACET_URLS[key] == cls._get_schema(), key


def test_disabled_means_no_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    rec = LineageRecorder()
    simulate(rec, "run1", tmp_path)
    assert rec.flush()
    assert not local_root().lineage_events.exists()
    assert load_settings().enabled is False


def test_source_location_of_a_pipeline_module_in_git(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("c0ffee" * 6 + "c0ff\n")
    (repo / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://example.com/me/proj.git\n'
    )
    (repo / "pipelines").mkdir()
    mod = repo / "pipelines" / "churn.py"
    mod.write_text("# pipeline\n")
    rec = LineageRecorder()
    rec.run_started("r", "churn", source_path=str(mod))
    rec.run_finished("r", "SUCCEEDED")
    rec.flush()
    start = events()[0]
    validate_event(start)
    loc = start["job"]["facets"]["sourceCodeLocation"]
    assert (loc["type"], loc["path"], loc["repoUrl"], loc["version"]) == (
        "git",
        "pipelines/churn.py",
        "https://example.com/me/proj.git",
        "c0ffee" * 6 + "c0ff",
    )
