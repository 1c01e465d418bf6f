"""Off the local engine (on a cluster), a launcher step reports its own OpenLineage events."""

import json
import sys
from pathlib import Path

import pytest
from train_sweep_harness import run_component

from workbench_dsl import Dataset, Input, Model, Output, train
from workbench_dsl.runtime._lineage import run_id_from_pod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "lineage"))
from ol_schema import validate_event


@train
def fit(data: Input[Dataset], scale: float, model: Output[Model]) -> float:
    with open(data.path) as f, open(model.path, "w") as out:
        out.write(str(len(f.read()) * scale))
    return scale


@train
def broken(data: Input[Dataset], model: Output[Model]) -> float:
    raise ValueError("no convergence")


def _env(events: Path) -> dict[str, str]:
    return {
        "WORKBENCH_ENGINE": "",  # not under the local engine
        "WORKBENCH_PIPELINE": "churn",
        "WORKBENCH_TASK": "fit",
        "KFP_POD_NAME": "churn-x7k2p-system-container-impl-2934801",
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(events),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }


def _read(events: Path) -> list[dict]:
    lines = [json.loads(x) for x in events.read_text().splitlines() if x.strip()]
    for e in lines:
        validate_event(e)
    return lines


def test_the_run_is_read_from_the_pod_name() -> None:
    assert run_id_from_pod("churn-x7k2p-system-container-impl-2934801") == "churn-x7k2p"
    assert run_id_from_pod("somepod") is None


def test_a_launcher_off_the_engine_emits_start_and_complete(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    events = tmp_path / "ol.jsonl"
    out = run_component(
        fit,
        workdir=tmp_path / "attempt",
        parameters={"scale": 2.0},
        artifacts={"data": str(data)},
        env=_env(events),
    )
    assert out["parameterValues"]["Output"] == 2.0
    start, complete = _read(events)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert complete["job"]["name"] == "churn.fit"
    parent = complete["run"]["facets"]["parent"]
    assert parent["job"]["name"] == "churn"
    # inputs and outputs are named after their URIs, which is how a producer's output
    # and its consumers' inputs meet in a lineage backend
    assert [d["name"] for d in complete["inputs"]] == [str(data)]
    assert [d["name"] for d in complete["outputs"]] == [out["paths"]["model"]]


def test_a_failing_launcher_emits_fail(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n")
    events = tmp_path / "ol.jsonl"
    with pytest.raises(Exception, match="no convergence"):
        run_component(
            broken, workdir=tmp_path / "attempt", artifacts={"data": str(data)}, env=_env(events)
        )
    kinds = [e["eventType"] for e in _read(events)]
    assert kinds == ["START", "FAIL"]


def test_nothing_is_emitted_without_a_configured_backend(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n")
    env = {k: v for k, v in _env(tmp_path / "ol.jsonl").items() if "OPENLINEAGE" not in k}
    run_component(
        fit,
        workdir=tmp_path / "attempt",
        parameters={"scale": 1.0},
        artifacts={"data": str(data)},
        env=env,
    )
    assert not (tmp_path / "ol.jsonl").exists()
