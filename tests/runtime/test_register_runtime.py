"""The @register step as a task runs it: evaluate, gate, register in MLflow, approve, promote.

Each test executes the compiled component through KFP's own executor, under
the local engine's environment contract, against a real SQLite MLflow registry.
"""

from __future__ import annotations

import json
import pickle
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl import Dataset, Input, Model, register
from workbench_dsl.backends import approvals
from workbench_dsl.backends.registry import open_registry


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated empty registry, made once per session (MLflow's migrations take 2 s)."""
    path = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not path.exists():
        open_registry(f"sqlite:///{path}").models()
    return path


@pytest.fixture
def home(workbench_home: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(mlflow_template, workbench_home / "mlflow.db")
    for key, value in {
        "WORKBENCH_ENGINE": "local",
        "WORKBENCH_RUN_ID": "run-42",
        "WORKBENCH_PIPELINE": "churn-train",
        "WORKBENCH_TASK": "evaluate",
        "WORKBENCH_STATUS_FILE": str(workbench_home / "status"),
    }.items():
        monkeypatch.setenv(key, value)
    return workbench_home


def execute(step: Any, out: Path, params: dict[str, Any] | None = None, **artifacts: Path) -> Any:
    """Run a step's component the way the engine's worker does (KFP's executor)."""
    from kfp.dsl.executor import Executor

    component = step.component
    spec = component.component_spec
    inputs = {
        name: {
            "artifacts": [
                {
                    "name": name,
                    "uri": str(path),
                    "type": {"schemaTitle": spec.inputs[name].type.split("@")[0]},
                    "metadata": {},
                }
            ]
        }
        for name, path in artifacts.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    executor_input = {
        "inputs": {"parameterValues": params or {}, "artifacts": inputs},
        "outputs": {
            "parameters": {k: {"outputFile": str(out / k)} for k in spec.outputs},
            "outputFile": str(out / "executor_output.json"),
        },
    }
    Executor(executor_input, component.python_func).execute()
    return json.loads((out / "executor_output.json").read_text())["parameterValues"]


def _model(path: Path, flip: bool = False) -> Path:
    from sklearn.tree import DecisionTreeClassifier

    X = [[0.0], [1.0], [2.0], [3.0]]
    y = [1, 1, 0, 0] if flip else [0, 0, 1, 1]
    with open(path, "wb") as f:
        pickle.dump(DecisionTreeClassifier(random_state=0).fit(X, y), f)
    return path


class Doubler:
    """Not an estimator: anything with predict() registers as pyfunc."""

    def predict(self, values: Any) -> list[Any]:
        return [2 * v for v in values]


def _data(path: Path) -> Path:
    path.write_text("x,y\n0,0\n3,1\n", encoding="utf-8")
    return path


@register(model="churn", gate={"accuracy": ">= 0.9", "latency_ms": "< 50"}, alias="staging")
def evaluate(model: Input[Model], data: Input[Dataset], threshold: float = 0.5) -> dict:
    import csv
    import pickle

    with open(model.path, "rb") as f:
        clf = pickle.load(f)
    with open(data.path) as f:
        rows = list(csv.DictReader(f))
    hits = sum(int(clf.predict([[float(r["x"])]])[0]) == int(r["y"]) for r in rows)
    return {"accuracy": hits / len(rows), "latency_ms": 1.5}


@register(
    model="churn",
    gate={"accuracy": ">= 0.9"},
    alias="staging",
    approval="manual",
    promote_to="production",
    approval_timeout=30,
)
def reviewed(model: Input[Model], data: Input[Dataset]) -> dict:
    return {"accuracy": 0.95}


def test_passing_gate_registers_a_version_with_alias_and_lineage(
    home: Path, tmp_path: Path
) -> None:
    model, data = _model(tmp_path / "m.pkl"), _data(tmp_path / "d.csv")
    out = execute(evaluate, tmp_path / "o", {"threshold": 0.7}, model=model, data=data)
    assert out == {"promoted": True, "version": "1", "model_uri": "models:/churn/1"}

    registry = open_registry()
    v = registry.get_version("churn", "1")
    assert v.aliases == ("staging",)
    assert v.metrics == {"accuracy": 1.0, "latency_ms": 1.5}
    assert v.params == {"threshold": "0.7"}
    assert v.tags["workbench.run_id"] == "run-42"
    assert v.tags["workbench.pipeline"] == "churn-train"
    assert v.tags["workbench.step"] == "evaluate"
    assert v.tags["workbench.flavor"] == "sklearn"
    run = registry.client.get_run(v.run_id)  # type: ignore[attr-defined]
    import hashlib

    assert run.data.tags["workbench.input.model.digest"] == (
        "sha256:" + hashlib.sha256(model.read_bytes()).hexdigest()
    )
    assert run.data.tags["workbench.gate"] == "passed"
    # The registered model loads and predicts like the step's own.
    storage = registry.download_uri("churn", "1")
    from workbench_dsl.backends.deployer._predictors import load_native, model_dir

    assert list(load_native(model_dir(storage), "sklearn").predict([[0.0], [3.0]])) == [0, 1]
    # Requirements were given, not inferred (inference costs seconds).
    reqs = (model_dir(storage) / "requirements.txt").read_text()
    assert "scikit-learn==" in reqs


def test_failing_gate_registers_nothing_and_is_not_an_error(home: Path, tmp_path: Path) -> None:
    model, data = _model(tmp_path / "m.pkl", flip=True), _data(tmp_path / "d.csv")
    out = execute(evaluate, tmp_path / "o", model=model, data=data)
    assert out == {"promoted": False, "version": "", "model_uri": ""}
    assert open_registry().models() == []
    assert "gate failed: accuracy >= 0.9 (got 0)" in (home / "status").read_text()


def test_a_metric_the_gate_names_must_be_returned(home: Path, tmp_path: Path) -> None:
    @register(model="m", gate={"accuracy": ">= 0.5", "auc": "> 0.7"})
    def partial(model: Input[Model]) -> dict:
        return {"accuracy": 0.99}

    from workbench_dsl.errors import JobFailed

    with pytest.raises(
        JobFailed,
        match=r"the gate names 'auc' but the evaluation returned no such metric \(it returned: accuracy\)",
    ):
        execute(partial, tmp_path / "o", model=_model(tmp_path / "m.pkl"))
    assert open_registry().models() == []


def test_metrics_must_be_a_dict_of_numbers(home: Path, tmp_path: Path) -> None:
    @register(model="m")
    def wordy(model: Input[Model]) -> dict:
        return {"accuracy": "high"}

    from workbench_dsl.errors import JobFailed

    with pytest.raises(
        JobFailed, match=r"returned metric 'accuracy' = 'high'; metrics must be numbers"
    ):
        execute(wordy, tmp_path / "o", model=_model(tmp_path / "m.pkl"))


def _decide_when_waiting(home: Path, **decision: Any) -> threading.Thread:
    """Act like a person: wait for the step's status line, then run the decision."""

    def person() -> None:
        status = home / "status"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if status.exists() and status.read_text().startswith("waiting for approval"):
                break
            time.sleep(0.05)
        assert status.read_text() == "waiting for approval: workbench approve churn 1"
        approvals.decide(open_registry(), "churn", "1", **decision)

    thread = threading.Thread(target=person)
    thread.start()
    return thread


@pytest.fixture
def engine(home: Path) -> Any:
    """The run's engine side: this process holds the approval channel of run-42."""
    from workbench_dsl.engine.approval_channel import ApprovalChannel
    from workbench_dsl.paths import LocalRoot

    channel = ApprovalChannel(LocalRoot(home), "run-42", "churn-train").open()
    yield channel
    channel.close("SUCCEEDED")


def test_manual_approval_waits_then_promotes(home: Path, tmp_path: Path, engine: Any) -> None:
    import getpass

    person = _decide_when_waiting(home, approve=True, by="alice", comment="ship it")
    out = execute(
        reviewed, tmp_path / "o", model=_model(tmp_path / "m.pkl"), data=_data(tmp_path / "d.csv")
    )
    person.join()
    assert out == {"promoted": True, "version": "1", "model_uri": "models:/churn/1"}
    v = open_registry().get_version("churn", "1")
    assert v.aliases == ("production", "staging")
    assert v.tags[approvals.TAG_STATE] == "approved"
    assert v.tags[approvals.TAG_BY] == getpass.getuser()
    assert v.tags[approvals.TAG_CLAIMED_BY] == "alice"
    assert v.tags[approvals.TAG_COMMENT] == "ship it"
    assert v.tags[approvals.TAG_AT].endswith("+00:00")
    assert f"approved by {getpass.getuser()} (claimed: alice)" in (home / "status").read_text()


def test_without_an_engine_a_manual_approval_fails_and_promotes_nothing(
    home: Path, tmp_path: Path
) -> None:
    from workbench_dsl.errors import JobFailed

    with pytest.raises(JobFailed, match=r"approval of churn version 1: run run-42's engine is not"):
        execute(
            reviewed,
            tmp_path / "o",
            model=_model(tmp_path / "m.pkl"),
            data=_data(tmp_path / "d.csv"),
        )
    assert "production" not in open_registry().get_version("churn", "1").aliases


def test_a_resumed_step_asks_again_on_the_version_its_run_registered(
    home: Path, tmp_path: Path
) -> None:
    from workbench_dsl.engine.approval_channel import ApprovalChannel
    from workbench_dsl.errors import JobFailed
    from workbench_dsl.paths import LocalRoot

    first = ApprovalChannel(LocalRoot(home), "run-42", "churn-train").open()

    def cancel_while_waiting() -> None:
        status = home / "status"
        while not (status.exists() and status.read_text().startswith("waiting for approval")):
            time.sleep(0.05)
        first.close("CANCELLED")

    ended = threading.Thread(target=cancel_while_waiting)
    ended.start()
    with pytest.raises(JobFailed, match="the approval expired"):
        execute(
            reviewed,
            tmp_path / "o",
            model=_model(tmp_path / "m.pkl"),
            data=_data(tmp_path / "d.csv"),
        )
    ended.join()
    assert approvals.get(open_registry(), "churn", "1").state == "expired"

    second = ApprovalChannel(LocalRoot(home), "run-42", "churn-train").open()  # runs resume
    (home / "status").unlink()
    try:
        person = _decide_when_waiting(home, approve=True)
        out = execute(
            reviewed,
            tmp_path / "o2",
            model=_model(tmp_path / "m.pkl"),
            data=_data(tmp_path / "d.csv"),
        )
        person.join()
    finally:
        second.close("SUCCEEDED")
    assert out == {"promoted": True, "version": "1", "model_uri": "models:/churn/1"}
    assert [v.version for v in open_registry().versions("churn")] == ["1"]


def test_rejection_is_not_promoted_and_loses_its_aliases(
    home: Path, tmp_path: Path, engine: Any
) -> None:
    person = _decide_when_waiting(home, approve=False, by="bob", comment="drift")
    out = execute(
        reviewed, tmp_path / "o", model=_model(tmp_path / "m.pkl"), data=_data(tmp_path / "d.csv")
    )
    person.join()
    assert out == {"promoted": False, "version": "1", "model_uri": "models:/churn/1"}
    registry = open_registry()
    assert registry.get_version("churn", "1").aliases == ()
    from workbench_dsl.backends.registry import AliasRefused

    with pytest.raises(AliasRefused, match="was rejected; it can never receive an alias"):
        registry.set_alias("churn", "production", "1")


def test_no_decision_before_the_timeout_fails_the_step(
    home: Path, tmp_path: Path, engine: Any
) -> None:

    @register(model="churn", approval="manual", approval_timeout=0.3)
    def hurried(model: Input[Model]) -> dict:
        return {"accuracy": 1.0}

    from workbench_dsl.errors import JobFailed

    with pytest.raises(
        JobFailed, match=r"no decision on churn version 1 within 0.3s; the approval expired"
    ):
        execute(hurried, tmp_path / "o", model=_model(tmp_path / "m.pkl"))
    registry = open_registry()
    assert approvals.get(registry, "churn", "1").state == "expired"
    with pytest.raises(approvals.ApprovalError, match="was already expired"):
        approvals.decide(registry, "churn", "1", approve=True)


def test_flavors_pyfunc_object_and_saved_mlflow_model(home: Path, tmp_path: Path) -> None:
    @register(model="rules")
    def rules(model: Input[Model]) -> dict:
        return {"accuracy": 1.0}

    with open(tmp_path / "obj.pkl", "wb") as f:
        pickle.dump(Doubler(), f)
    out = execute(rules, tmp_path / "o1", model=tmp_path / "obj.pkl")
    registry = open_registry()
    v = registry.get_version("rules", out["version"])
    assert v.tags["workbench.flavor"] == "pyfunc"
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(registry.download_uri("rules", v.version))
    assert list(loaded.predict([1, 2])) == [2, 4]

    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(
        DummyClassifier(strategy="constant", constant=1).fit([[0]], [1]),
        saved,
        serialization_format="pickle",
        pip_requirements=["scikit-learn"],
    )
    out = execute(rules, tmp_path / "o2", model=saved)
    v = registry.get_version("rules", out["version"])
    assert v.tags["workbench.flavor"] == "mlflow"
    assert (
        Path(registry.download_uri("rules", v.version).removeprefix("file://")) / "MLmodel"
    ).exists()
