"""Train and deploy: data -> features -> sweep -> train the best -> gate and register -> approve -> canary deploy.

The whole lifecycle on scikit-learn's bundled breast-cancer data (no download):

1. ``load_data`` splits the dataset into training and held-out parts;
2. ``select_features`` keeps the ``top_k`` most informative columns;
3. ``tune`` sweeps a logistic regression's hyperparameters (Optuna locally,
   Katib on a cluster), reporting each fold so ``medianstop`` can stop laggards;
4. ``fit`` trains the best configuration (a Kubeflow Trainer TrainJob on a cluster);
5. ``evaluate`` measures it on the held-out part, checks the gate
   (accuracy >= 0.9), registers it in MLflow as ``staging`` and waits for a
   person to approve it for ``production``;
6. ``predict`` deploys it: the first version takes all traffic, a later one
   rolls out as a 10% canary beside it (a local KServe server, or an
   InferenceService on a cluster);
7. ``smoke_test`` sends one held-out row to the endpoint and returns a curl line.

    workbench recipe run train-deploy --approve     # approve for the demo
    workbench recipe run train-deploy               # waits for `workbench approve ...`
    workbench recipe run train-deploy -p top_k=15 -p seed=1

Copy it (`workbench recipe show train-deploy` prints where it is) and edit it:
it is an ordinary pipeline module.
"""

from typing import NamedTuple

from workbench_dsl import (
    Dataset,
    Else,
    If,
    Input,
    Model,
    OneOf,
    Output,
    develop,
    pipeline,
    register,
    serve,
    space,
    sweep,
    train,
)

MODEL = "cancer-classifier"


class Outputs(NamedTuple):
    """What the recipe returns: where the endpoint is, which version, and a curl line."""

    endpoint_url: str
    model_uri: str
    curl: str


@develop(preset="sklearn")
def load_data(test_size: float, seed: int, data: Output[Dataset], holdout: Output[Dataset]):
    """Split scikit-learn's bundled breast-cancer dataset into training and held-out CSVs."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train_part, test_part = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame["target"]
    )
    train_part.to_csv(data.path, index=False)
    test_part.to_csv(holdout.path, index=False)
    data.metadata["rows"] = len(train_part)
    holdout.metadata["rows"] = len(test_part)


@develop(preset="sklearn")
def select_features(
    data: Input[Dataset],
    holdout: Input[Dataset],
    top_k: int,
    train_features: Output[Dataset],
    test_features: Output[Dataset],
) -> list:
    """Keep the top_k columns by ANOVA F-score on the training part (applied to both parts)."""
    import pandas as pd
    from sklearn.feature_selection import SelectKBest, f_classif

    train_frame, test_frame = pd.read_csv(data.path), pd.read_csv(holdout.path)
    X, y = train_frame.drop(columns=["target"]), train_frame["target"]
    selector = SelectKBest(f_classif, k=min(top_k, X.shape[1])).fit(X, y)
    columns = [str(c) for c in X.columns[selector.get_support()]]
    train_frame[[*columns, "target"]].to_csv(train_features.path, index=False)
    test_frame[[*columns, "target"]].to_csv(test_features.path, index=False)
    train_features.metadata["columns"] = columns
    return columns


@sweep(
    space={"C": space.loguniform(1e-3, 1e2), "penalty": space.categorical(["l1", "l2"])},
    objective="accuracy",
    goal="maximize",
    algorithm="tpe",
    max_trials=8,
    parallel_trials=2,
    early_stopping="medianstop",
    seed=0,
    preset="sklearn",
)
def tune(data: Input[Dataset], C: float, penalty: str) -> dict:
    """One trial: 3-fold cross-validated accuracy of a scaled logistic regression."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from workbench_dsl import report

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    scores = []
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for step, (fit_idx, val_idx) in enumerate(folds.split(X, y), start=1):
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, penalty=penalty, solver="liblinear")
        )
        model.fit(X[fit_idx], y[fit_idx])
        scores.append(float(model.score(X[val_idx], y[val_idx])))
        report(step=step, accuracy=float(np.mean(scores)))
    return {"accuracy": float(np.mean(scores))}


@train(preset="sklearn")
def fit(data: Input[Dataset], params: dict, model: Output[Model]) -> float:
    """Train the best configuration on the whole training part; returns training accuracy."""
    import pickle

    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    estimator = make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear", **params))
    estimator.fit(X, y)
    with open(model.path, "wb") as f:
        pickle.dump(estimator, f)
    model.metadata.update({"framework": "sklearn", **params})
    return float(estimator.score(X, y))


@register(
    model=MODEL,
    gate={"accuracy": ">= 0.9"},
    alias="staging",
    approval="manual",
    promote_to="production",
    approval_timeout="1h",
    preset="sklearn",
)
def evaluate(model: Input[Model], holdout: Input[Dataset]) -> dict:
    """Accuracy, F1 and the latency of one prediction on the held-out part."""
    import pickle
    import time

    import pandas as pd
    from sklearn.metrics import f1_score

    frame = pd.read_csv(holdout.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    with open(model.path, "rb") as f:
        estimator = pickle.load(f)
    start = time.perf_counter()
    for row in X[:20]:
        estimator.predict(row.reshape(1, -1))
    latency_ms = (time.perf_counter() - start) / 20 * 1000
    predicted = estimator.predict(X)
    return {
        "accuracy": float((predicted == y).mean()),
        "f1": float(f1_score(y, predicted)),
        "latency_ms": latency_ms,
    }


@serve(endpoint=MODEL, canary_percent=10, protocol="v2")
def predict(model, instances):
    """The probability that each instance (the selected features) is benign."""
    return model.predict_proba(instances)[:, 1].tolist()


@develop(cache=False)
def smoke_test(url: str, holdout: Input[Dataset]) -> NamedTuple(
    "Smoke", [("prediction", float), ("curl", str)]
):
    """Send the first held-out row to the endpoint; return its answer and a curl line for it."""
    import csv
    import json
    import urllib.request

    with open(holdout.path, newline="") as f:
        row = next(csv.DictReader(f))
    features = [float(v) for k, v in row.items() if k != "target"]
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, len(features)],
                    "datatype": "FP64",
                    "data": features,
                }
            ]
        }
    )
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    prediction = float(answer["outputs"][0]["data"][0])
    print(f"smoke test: {url} answered {prediction:.4f} for a row labelled {row['target']}")
    curl = f"curl -s -H 'Content-Type: application/json' -d '{body}' {url}"
    return (prediction, curl)


@develop(cache=False)
def not_deployed(promoted: bool, version: str) -> str:
    """Why nothing was deployed: the gate failed, or a person rejected the version."""
    if version:
        return f"version {version} was rejected: nothing deployed"
    return "the model did not pass the gate (accuracy >= 0.9): nothing registered or deployed"


@pipeline(name="train-deploy")
def train_deploy(test_size: float = 0.25, seed: int = 0, top_k: int = 10) -> NamedTuple(
    "Outputs", [("endpoint_url", str), ("model_uri", str), ("curl", str)]
):
    """Sweep, train, gate, register, approve and canary-deploy a classifier."""
    split = load_data(test_size=test_size, seed=seed)
    feats = select_features(
        data=split.outputs["data"], holdout=split.outputs["holdout"], top_k=top_k
    )
    best = tune(data=feats.outputs["train_features"])
    model = fit(data=feats.outputs["train_features"], params=best.outputs["best_params"])
    version = evaluate(model=model.outputs["model"], holdout=feats.outputs["test_features"])
    with If(version.outputs["promoted"] == True):  # noqa: E712 - KFP conditions compare channels
        endpoint = predict(model_uri=version.outputs["model_uri"])
        smoke = smoke_test(url=endpoint.outputs["url"], holdout=feats.outputs["test_features"])
    with Else():
        skipped = not_deployed(
            promoted=version.outputs["promoted"], version=version.outputs["version"]
        )
    return Outputs(
        endpoint_url=OneOf(endpoint.outputs["url"], skipped.output),
        model_uri=version.outputs["model_uri"],
        curl=OneOf(smoke.outputs["curl"], skipped.output),
    )
