"""The Python client for past runs: get_run, latest_run, list_runs, artifacts loaded by digest."""

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Metrics, Model, Output

import workbench_dsl
from workbench_dsl import get_run, latest_run, list_runs
from workbench_dsl.client import ArtifactChanged, ArtifactRef, compare_runs
from workbench_dsl.errors import UsageError

pytestmark = pytest.mark.slow


@dsl.component(base_image="python:3.11")
def produce(
    rows: int,
    table: Output[Dataset],
    columnar: Output[Dataset],
    scores: Output[Metrics],
    model: Output[Model],
    notes: Output[Artifact],
) -> int:
    import pickle

    import pandas as pd

    frame = pd.DataFrame({"x": list(range(rows)), "y": [i * i for i in range(rows)]})
    frame.to_csv(table.path, index=False)
    frame.to_parquet(columnar.path)
    scores.log_metric("rows", rows)
    scores.log_metric("mean_y", float(frame["y"].mean()))
    with open(model.path, "wb") as f:
        pickle.dump({"kind": "lookup", "rows": rows}, f)
    with open(notes.path, "w") as f:
        f.write("free text")
    return rows * 2


@dsl.pipeline(name="client-demo")
def demo(rows: int = 3) -> int:
    return produce(rows=rows).outputs["Output"]


@dsl.component(base_image="python:3.11")
def slow(flag: str) -> str:
    import os
    import time

    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.05)
    return "done"


@dsl.pipeline(name="client-slow")
def slow_pipeline(flag: str) -> str:
    return slow(flag=flag).output


def test_runs_read_back_by_id_pipeline_status_and_experiment(workbench_home: Path) -> None:
    first = workbench_dsl.run(demo, params={"rows": 3}, experiment="sizes")
    second = workbench_dsl.run(demo, params={"rows": 5}, experiment="sizes", cache=False)
    other = workbench_dsl.run(demo, params={"rows": 4})
    assert first.ok and second.ok and other.ok

    run = get_run(first.run_id[:6])  # a unique prefix works as on the CLI
    assert run.id == first.run_id and run.experiment == "sizes" and run.status == "SUCCEEDED"
    assert run.params == {"rows": 3} and run.outputs == {"Output": 6}
    assert get_run(other.run_id).experiment == "Default"

    assert latest_run("client-demo").id == other.run_id
    assert latest_run("client-demo", experiment="sizes").id == second.run_id
    assert latest_run("client-demo", status="FAILED") is None
    assert latest_run("no-such-pipeline") is None
    assert [r.id for r in list_runs("client-demo", experiment="sizes")] == [
        second.run_id,
        first.run_id,
    ]
    assert len(list_runs(limit=None)) == 3 and len(list_runs(limit=1)) == 1
    with pytest.raises(UsageError, match="no run matches"):
        get_run("zzzz")

    task = run.task("produce")
    assert task.status == "SUCCEEDED" and task.inputs == {"rows": 3}
    assert task.outputs["Output"] == 6
    assert run.metrics == {"produce.rows": 3.0, "produce.mean_y": pytest.approx(5 / 3)}

    cmp = compare_runs([run, get_run(second.run_id)])
    rows = {r["name"]: r for r in cmp["params"]}
    assert rows["rows"] == {"name": "rows", "values": [3, 5], "differs": True}
    metrics = {r["name"]: r for r in cmp["metrics"]}
    assert metrics["produce.rows"]["values"] == [3.0, 5.0] and metrics["produce.rows"]["differs"]
    assert cmp["tasks"][0]["status"] == ["SUCCEEDED", "SUCCEEDED"]


def test_artifacts_load_as_objects_after_their_digest_is_checked(workbench_home: Path) -> None:
    result = workbench_dsl.run(demo, params={"rows": 4})
    task = get_run(result.run_id).task("produce")
    table, columnar = task.outputs["table"], task.outputs["columnar"]
    assert isinstance(table, ArtifactRef) and table.type == "system.Dataset"
    assert table.sha256 and table.path and Path(table.path).is_file()

    frame = table.load()
    assert list(frame.columns) == ["x", "y"] and frame["y"].tolist() == [0, 1, 4, 9]
    assert columnar.load()["y"].tolist() == [0, 1, 4, 9]  # Parquet, by its magic bytes
    assert task.outputs["scores"].load() == {"rows": 4.0, "mean_y": 3.5}
    assert task.outputs["model"].load() == {"kind": "lookup", "rows": 4}
    notes = task.outputs["notes"].load()
    assert isinstance(notes, Path) and notes.read_text() == "free text"

    # A stored artifact that changed is refused, never handed over.
    path = Path(table.path)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_text("x,y\n1,1\n")
    with pytest.raises(ArtifactChanged, match="changed since its run stored it"):
        table.load()
    path.unlink()
    with pytest.raises(ArtifactChanged, match="is gone"):
        table.load()


def test_reading_while_a_run_goes_on_is_safe_and_never_writes(
    workbench_home: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    done: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: done.update(r=workbench_dsl.run(slow_pipeline, params={"flag": str(flag)}))
    )
    worker.start()
    try:
        deadline = time.time() + 60
        running = None
        while time.time() < deadline:
            runs = list_runs("client-slow")
            if runs and runs[0].tasks.get("slow") and runs[0].tasks["slow"].status == "RUNNING":
                running = runs[0]
                break
            time.sleep(0.05)
        assert running is not None and running.status == "RUNNING"
        assert latest_run("client-slow", status="RUNNING").id == running.id
    finally:
        flag.write_text("")
        worker.join(60)
    assert done["r"].ok
    assert get_run(running.id).task("slow").outputs["Output"] == "done"

    # The client's connection is read-only: a write through it fails.
    from workbench_dsl.client._runs import _open

    store = _open(None)
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
            store.conn.execute("DELETE FROM runs")
    finally:
        store.close()
    assert len(list_runs(limit=None)) == 1
