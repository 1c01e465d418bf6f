"""A model carries the data it was trained on to its registered version (``workbench.training_data``).

The @train component is run through KFP's own executor (as the engine's worker and a KFP
pod do); the metadata it writes on its model is handed to the @register component the
same way, which tags the version in a real SQLite MLflow registry.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl import Dataset, Input, Model, Output, register, train
from workbench_dsl.backends.registry import open_registry


@pytest.fixture
def home(workbench_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {
        "WORKBENCH_ENGINE": "local",
        "WORKBENCH_RUN_ID": "run-7",
        "WORKBENCH_PIPELINE": "churn-train",
        "WORKBENCH_STATUS_FILE": str(workbench_home / "status"),
    }.items():
        monkeypatch.setenv(key, value)
    return workbench_home


def execute(step: Any, out: Path, artifacts: dict[str, tuple[str, dict[str, Any]]]) -> Any:
    """Run a step's component as KFP's executor does; return its executor output."""
    from kfp.dsl.executor import Executor

    component = step.component
    spec = component.component_spec

    def entry(name: str, uri: str, meta: dict[str, Any], kind: str) -> dict[str, Any]:
        return {
            "artifacts": [
                {"name": name, "uri": uri, "type": {"schemaTitle": kind}, "metadata": meta}
            ]
        }

    inputs = {
        n: entry(n, uri, meta, spec.inputs[n].type.split("@")[0])
        for n, (uri, meta) in artifacts.items()
    }
    outs = {
        n: entry(n, str(out / n), {}, o.type.split("@")[0])
        for n, o in (spec.outputs or {}).items()
        if o.type.startswith("system.")
    }
    out.mkdir(parents=True, exist_ok=True)
    executor_input = {
        "inputs": {"parameterValues": {}, "artifacts": inputs},
        "outputs": {
            "artifacts": outs,
            "parameters": {
                k: {"outputFile": str(out / k)}
                for k, o in (spec.outputs or {}).items()
                if not o.type.startswith("system.")
            },
            "outputFile": str(out / "executor_output.json"),
        },
    }
    Executor(executor_input, component.python_func).execute()
    return json.loads((out / "executor_output.json").read_text())


@train
def fit(data: Input[Dataset], holdout: Input[Dataset], model: Output[Model]) -> None:
    import pickle

    from sklearn.tree import DecisionTreeClassifier

    with open(model.path, "wb") as f:
        pickle.dump(DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1]), f)
    model.metadata["framework"] = "sklearn"


@register(model="churn", gate={"accuracy": ">= 0.5"})
def evaluate(model: Input[Model], holdout: Input[Dataset]) -> dict:
    return {"accuracy": 1.0}


def test_the_registered_version_names_its_training_data(home: Path, tmp_path: Path) -> None:
    data, holdout = tmp_path / "data.csv", tmp_path / "holdout.csv"
    for p in (data, holdout):
        p.write_text("size,colour,label\n1,0,0\n", encoding="utf-8")
    data_meta = {"label": "label", "features": ["size", "colour"], "rows": 1}
    done = execute(
        fit, tmp_path / "fit", {"data": (str(data), data_meta), "holdout": (str(holdout), {})}
    )
    model_meta = done["artifacts"]["model"]["artifacts"][0]["metadata"]
    # The user's own metadata stays; the step's datasets are added beside it.
    assert model_meta["framework"] == "sklearn"
    assert model_meta["workbench.training_data"] == [
        {"input": "data", "uri": str(data), "label": "label", "features": ["size", "colour"]},
        {"input": "holdout", "uri": str(holdout)},
    ]
    shutil.copy(tmp_path / "fit" / "model", tmp_path / "model.pkl")
    with open(tmp_path / "model.pkl", "rb") as f:
        pickle.load(f)  # the model the step wrote
    out = execute(
        evaluate,
        tmp_path / "reg",
        {"model": (str(tmp_path / "model.pkl"), model_meta), "holdout": (str(holdout), {})},
    )
    assert out["parameterValues"]["model_uri"] == "models:/churn/1"
    tags = open_registry().get_version("churn", "1").tags
    # The dataset the register step does not read itself is the training set.
    assert tags["workbench.training_data"] == str(data)
    assert json.loads(tags["workbench.training_data.features"]) == ["size", "colour"]
    assert tags["workbench.training_data.label"] == "label"


def test_a_step_that_is_not_a_launcher_can_name_it_by_hand(home: Path, tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1]), f)
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("x\n1\n", encoding="utf-8")
    meta = {"workbench.training_data": "s3://data/train.csv"}
    execute(
        evaluate,
        tmp_path / "reg",
        {"model": (str(tmp_path / "model.pkl"), meta), "holdout": (str(holdout), {})},
    )
    tags = open_registry().get_version("churn", "1").tags
    assert tags["workbench.training_data"] == "s3://data/train.csv"


def test_without_training_metadata_no_tag_is_made_up(home: Path, tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1]), f)
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("x\n1\n", encoding="utf-8")
    execute(
        evaluate,
        tmp_path / "reg",
        {"model": (str(tmp_path / "model.pkl"), {}), "holdout": (str(holdout), {})},
    )
    tags = open_registry().get_version("churn", "1").tags
    assert not [k for k in tags if k.startswith("workbench.training_data")]


PIPELINE = """
from workbench_dsl import Dataset, Input, Model, Output, develop, pipeline, register, train


@develop(preset="sklearn")
def make_data(data: Output[Dataset], holdout: Output[Dataset]):
    rows = "size,label\\n" + "".join(f"{i},{i % 2}\\n" for i in range(20))
    for out in (data, holdout):
        with open(out.path, "w") as f:
            f.write(rows)
    data.metadata["label"] = "label"


@train(preset="sklearn")
def fit(data: Input[Dataset], model: Output[Model]):
    import pickle

    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.read_csv(data.path)
    with open(model.path, "wb") as f:
        pickle.dump(DecisionTreeClassifier().fit(frame[["size"]], frame["label"]), f)


@register(model="tagged")
def evaluate(model: Input[Model], holdout: Input[Dataset]) -> dict:
    return {"accuracy": 1.0}


@pipeline(name="tagged")
def tagged():
    d = make_data()
    m = fit(data=d.outputs["data"])
    evaluate(model=m.outputs["model"], holdout=d.outputs["holdout"])
"""


@pytest.mark.slow
def test_a_local_run_tags_the_version_with_the_artifact_it_trained_on(
    workbench_home: Path, tmp_path: Path
) -> None:
    from workbench_dsl.local_run import run

    module = tmp_path / "tagged.py"
    module.write_text(PIPELINE, encoding="utf-8")
    result = run(str(module))
    assert result.ok, result.error
    tags = open_registry().get_version("tagged", "1").tags
    data = next(t for t in result.tasks if t["name"].endswith("make-data"))
    assert data["status"] == "SUCCEEDED"
    # The `data` output of make-data, not `holdout` (which the register step reads too).
    uri = tags["workbench.training_data"]
    assert Path(uri).name == "data" and Path(uri).read_text().startswith("size,label")
    assert tags["workbench.training_data.label"] == "label"
