# KFP reads the components' annotations at compile time: no `from __future__ import annotations`.
"""Lineage of a real local run: the engine's observer -> events -> `workbench lineage`."""

import json
from pathlib import Path
from typing import NamedTuple

import pytest
from ol_schema import validate_event
from typer.testing import CliRunner

from workbench_dsl.cli.app import app
from workbench_dsl.paths import local_root


def _compile(tmp_path: Path) -> str:
    from kfp import compiler, dsl
    from kfp.dsl import Dataset, Input, Model, Output

    @dsl.component(base_image="python:3.11")
    def load(rows: int, data: Output[Dataset]):
        with open(data.path, "w") as f:
            f.write("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(rows)))

    @dsl.component(base_image="python:3.11")
    def train(data: Input[Dataset], model: Output[Model]) -> float:
        with open(data.path) as src, open(model.path, "w") as f:
            f.write(src.read()[:10])
        return 0.9

    @dsl.component(base_image="python:3.11")
    def register(model: Input[Model], accuracy: float) -> NamedTuple(
        "Out", [("promoted", bool), ("version", str), ("model_uri", str)]
    ):
        return (True, "1", "models:/churn/1")

    @dsl.component(base_image="python:3.11")
    def deploy(model_uri: str, endpoint: str) -> NamedTuple(
        "Out", [("url", str), ("revision", str)]
    ):
        return (f"http://127.0.0.1:8000/v2/models/{endpoint}/infer", "r1")

    @dsl.pipeline(name="churn")
    def churn(rows: int = 5):
        d = load(rows=rows)
        t = train(data=d.outputs["data"])
        r = register(model=t.outputs["model"], accuracy=t.outputs["Output"])
        deploy(model_uri=r.outputs["model_uri"], endpoint="churn")

    path = tmp_path / "churn.yaml"
    compiler.Compiler().compile(churn, str(path))
    return path.read_text()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_local_run_is_traceable_from_endpoint_to_dataset(tmp_path: Path) -> None:
    from workbench_dsl.engine import execute

    text = _compile(tmp_path)
    # Every run emits lineage: the engine adds the observer itself.
    first = execute.start(text, {"rows": 7})
    assert first.status == "SUCCEEDED"
    second = execute.start(text, {"rows": 7})  # all cached
    assert second.status == "SUCCEEDED"

    events = [json.loads(x) for x in local_root().lineage_events.read_text().splitlines()]
    for e in events:
        validate_event(e)
    # 2 runs x (pipeline + 4 tasks) x (START + COMPLETE)
    assert len(events) == 20
    load = next(
        e for e in events if e["job"]["name"] == "churn.load" and e["eventType"] == "COMPLETE"
    )
    out = load["outputs"][0]
    assert out["name"] == "churn/load/data"
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 7
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["x", "y"]

    runner = CliRunner()
    r = runner.invoke(app, ["lineage", "endpoint:churn"])
    assert r.exit_code == 0, r.output
    chain = [
        line.strip().split(" ")[1]
        for line in r.stdout.splitlines()
        if line.strip().startswith("<-")
    ]
    assert chain == [
        "churn.deploy",
        "models:/churn/1",
        "churn.register",
        "churn/train/model",
        "churn.train",
        "churn/load/data",
        "churn.load",
    ]
    r = runner.invoke(app, ["lineage", "models:/churn/1", "--json"])
    data = json.loads(r.stdout)
    assert [data["nodes"][t["id"]]["name"] for t in data["downstream"]] == ["churn.deploy"]
    r = runner.invoke(app, ["lineage", f"run:{second.run_id}"])
    assert r.exit_code == 0 and "cached" in r.stdout and "churn.register" in r.stdout
