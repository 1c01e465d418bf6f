"""Quickstart: load a bundled dataset, train a classifier, evaluate it, report.

workbench run pipelines/quickstart.py -p n_estimators=50
workbench compile pipelines/quickstart.py -o quickstart.yaml
"""

from typing import NamedTuple

from workbench_dsl import (
    Dataset,
    Else,
    If,
    Input,
    Metrics,
    Model,
    OneOf,
    Output,
    develop,
    pipeline,
)


@develop(preset="sklearn")
def load_data(test_size: float, data: Output[Dataset], holdout: Output[Dataset]):
    """Split scikit-learn's bundled breast-cancer dataset (no download)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=test_size, random_state=0)
    train.to_csv(data.path, index=False)
    test.to_csv(holdout.path, index=False)
    data.metadata["rows"] = len(train)
    holdout.metadata["rows"] = len(test)


@develop(preset="sklearn")
def train_model(data: Input[Dataset], n_estimators: int, model: Output[Model]):
    """Fit a random forest on the training split."""
    import pickle

    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]), frame["target"]
    clf = RandomForestClassifier(n_estimators=n_estimators, random_state=0, n_jobs=1).fit(X, y)
    with open(model.path, "wb") as f:
        pickle.dump(clf, f)
    model.metadata["framework"] = "sklearn"


@develop(preset="sklearn")
def evaluate(model: Input[Model], holdout: Input[Dataset], metrics: Output[Metrics]) -> NamedTuple(
    "Evaluation", [("accuracy", float), ("passed", bool)]
):
    """Accuracy on the held-out split; `passed` when it clears 0.9."""
    import pickle

    import pandas as pd

    frame = pd.read_csv(holdout.path)
    with open(model.path, "rb") as f:
        clf = pickle.load(f)
    accuracy = float(clf.score(frame.drop(columns=["target"]), frame["target"]))
    metrics.log_metric("accuracy", accuracy)
    return (accuracy, accuracy >= 0.9)


@develop
def accept(accuracy: float) -> str:
    """The summary when the model clears the bar."""
    return f"accepted: accuracy {accuracy:.3f}"


@develop
def reject(accuracy: float) -> str:
    """The summary when it does not."""
    return f"rejected: accuracy {accuracy:.3f} is below 0.9"


@pipeline(name="quickstart")
def quickstart(n_estimators: int = 50, test_size: float = 0.25) -> str:
    """Train and evaluate a classifier on a bundled dataset."""
    data = load_data(test_size=test_size)
    model = train_model(data=data.outputs["data"], n_estimators=n_estimators)
    scores = evaluate(model=model.outputs["model"], holdout=data.outputs["holdout"])
    with If(scores.outputs["passed"] == True):  # noqa: E712 - KFP conditions compare channels
        accepted = accept(accuracy=scores.outputs["accuracy"])
    with Else():
        rejected = reject(accuracy=scores.outputs["accuracy"])
    return OneOf(accepted.output, rejected.output)
