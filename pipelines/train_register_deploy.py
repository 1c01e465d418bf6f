"""Train -> register (gate + manual approval) -> canary deploy.

    workbench run pipelines/train_register_deploy.py
    # the register step waits; in another terminal:
    workbench approvals list
    workbench approve breast-cancer 1 --comment "looks good"
    workbench endpoints predict breast-cancer --data '[[...30 features...]]'

Run it again with other parameters and the new version rolls out as a 10%
canary beside the first: `workbench endpoints promote breast-cancer` or
`workbench endpoints rollback breast-cancer`.
"""

from workbench_dsl import (
    Dataset,
    If,
    Input,
    Model,
    Output,
    develop,
    pipeline,
    register,
    serve,
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


@develop(preset="sklearn")
def train_model(data: Input[Dataset], n_estimators: int, model: Output[Model]):
    """Fit a random forest (on NumPy arrays, so the endpoint takes plain lists)."""
    import pickle

    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    clf = RandomForestClassifier(n_estimators=n_estimators, random_state=0, n_jobs=1).fit(X, y)
    with open(model.path, "wb") as f:
        pickle.dump(clf, f)
    model.metadata["framework"] = "sklearn"


@register(
    model="breast-cancer",
    gate={"accuracy": ">= 0.9", "latency_ms": "< 50"},
    alias="staging",
    approval="manual",
    promote_to="production",
    approval_timeout="2h",
    preset="sklearn",
)
def evaluate(model: Input[Model], holdout: Input[Dataset]) -> dict:
    """Accuracy on the held-out split and the latency of one prediction."""
    import pickle
    import time

    import pandas as pd

    frame = pd.read_csv(holdout.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    with open(model.path, "rb") as f:
        clf = pickle.load(f)
    start = time.perf_counter()
    for row in X[:20]:
        clf.predict(row.reshape(1, -1))
    latency_ms = (time.perf_counter() - start) / 20 * 1000
    return {"accuracy": float(clf.score(X, y)), "latency_ms": latency_ms}


@serve(endpoint="breast-cancer", canary_percent=10, protocol="v2")
def predict(model, instances):
    """The probability that each instance is benign."""
    return model.predict_proba(instances)[:, 1].tolist()


@pipeline(name="train-register-deploy")
def train_register_deploy(n_estimators: int = 50, test_size: float = 0.25):
    """Train a classifier, register it if it clears the gate and a person approves, canary it."""
    data = load_data(test_size=test_size)
    model = train_model(data=data.outputs["data"], n_estimators=n_estimators)
    version = evaluate(model=model.outputs["model"], holdout=data.outputs["holdout"])
    with If(version.outputs["promoted"] == True):  # noqa: E712 - KFP conditions compare channels
        predict(model_uri=version.outputs["model_uri"])
