"""Retrain on drift: when train-deploy's endpoint drifts, retrain, beat the model in production, approve, canary.

Set up on top of ``train-deploy`` with one command:

    workbench recipe run retrain-on-drift --approve   # --approve: for train-deploy's first run
    workbench scheduler                               # evaluates the drift trigger

``recipe run`` runs ``train-deploy`` first when its endpoint does not exist,
then adds the trigger ``retrain-on-drift`` (``--on drift:cancer-classifier``)
that runs this pipeline each time the endpoint's inputs drift:

The drift trigger passes the drifted features (``drifted_features``, logged).

1. ``load_fresh`` reads newly labelled data (``-p fresh_data=PATH``: a CSV of
   the endpoint's input columns and ``target``) and splits it into training
   and held-out parts. Without it the demo stands in for new data: the
   breast-cancer rows and columns train-deploy uses, every value scaled by
   ``1 + demo_shift`` (an instrument recalibrated: the drift to send as traffic);
2. ``fit`` trains a scaled logistic regression on the training part;
3. ``evaluate`` measures the challenger *and* the version now in production
   (``cancer-classifier@production``) with the same code on the same held-out
   part, and registers the challenger only if it passes the gate (accuracy >=
   0.9) and beats the champion's accuracy by 0.01 or more; then a person
   approves it (``workbench approve cancer-classifier N``);
4. ``predict`` rolls the approved version out to the endpoint as a 10% canary
   (``workbench endpoints promote cancer-classifier`` makes it the stable one).

Run the pipeline once by hand with ``workbench run`` on this file (``recipe
show retrain-on-drift`` prints where it is).
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
    train,
)
from workbench_dsl.recipes import TriggerSetup

MODEL = "cancer-classifier"  # train-deploy's registered model and endpoint


class Outputs(NamedTuple):
    """Where the endpoint is (or why nothing was rolled out) and the version registered."""

    endpoint_url: str
    model_uri: str


#: `workbench recipe run retrain-on-drift` adds this trigger (after train-deploy's endpoint exists).
SETUP = TriggerSetup(
    on=f"drift:{MODEL}",
    requires_endpoint=MODEL,
    requires_recipe="train-deploy",
    trigger="retrain-on-drift",
)


@develop(preset="sklearn", cache=False)
def load_fresh(
    drifted_features: str,
    fresh_data: str,
    demo_shift: float,
    test_size: float,
    seed: int,
    top_k: int,
    data: Output[Dataset],
    holdout: Output[Dataset],
) -> list:
    """Newly labelled rows (fresh_data, or the demo's drifted stand-in) split in two parts."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    if drifted_features:
        print(f"retraining: the endpoint's inputs drifted on {drifted_features}")
    if fresh_data:
        frame = pd.read_csv(fresh_data)
        if "target" not in frame.columns:
            raise ValueError(f"{fresh_data} has no 'target' column (the label to learn)")
        columns = [str(c) for c in frame.columns if c != "target"]
    else:
        from sklearn.datasets import load_breast_cancer
        from sklearn.feature_selection import SelectKBest, f_classif

        frame = load_breast_cancer(as_frame=True).frame
        # The columns train-deploy's endpoint takes: its split and selection, redone.
        train_part, _ = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=frame["target"]
        )
        X = train_part.drop(columns=["target"])
        selector = SelectKBest(f_classif, k=min(top_k, X.shape[1])).fit(X, train_part["target"])
        columns = [str(c) for c in X.columns[selector.get_support()]]
        frame = frame[[*columns, "target"]].copy()
        frame[columns] = frame[columns] * (1.0 + demo_shift)
    train_part, test_part = train_test_split(
        frame, test_size=test_size, random_state=seed + 1, stratify=frame["target"]
    )
    train_part.to_csv(data.path, index=False)
    test_part.to_csv(holdout.path, index=False)
    for part, rows in ((data, train_part), (holdout, test_part)):
        part.metadata.update({"rows": len(rows), "features": columns, "label": "target"})
    return columns


@train(preset="sklearn")
def fit(data: Input[Dataset], model: Output[Model]) -> float:
    """A scaled logistic regression on the fresh training part; returns training accuracy."""
    import pickle

    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    estimator = make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear"))
    estimator.fit(X, y)
    with open(model.path, "wb") as f:
        pickle.dump(estimator, f)
    model.metadata["framework"] = "sklearn"
    return float(estimator.score(X, y))


@register(
    model=MODEL,
    gate={"accuracy": ">= 0.9"},
    beats_champion={"accuracy": 0.01},
    alias="staging",
    approval="manual",
    promote_to="production",
    approval_timeout="24h",
    preset="sklearn",
)
def evaluate(model: Input[Model], holdout: Input[Dataset]) -> dict:
    """Accuracy and F1 on the held-out part (called for the challenger and the champion)."""
    import pickle

    import pandas as pd
    from sklearn.metrics import f1_score

    frame = pd.read_csv(holdout.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    with open(model.path, "rb") as f:
        estimator = pickle.load(f)
    predicted = estimator.predict(X)
    return {"accuracy": float((predicted == y).mean()), "f1": float(f1_score(y, predicted))}


@serve(endpoint=MODEL, canary_percent=10, protocol="v2")
def predict(model, instances):
    """The probability that each instance (train-deploy's selected features) is benign."""
    return model.predict_proba(instances)[:, 1].tolist()


@develop(cache=False)
def not_deployed(promoted: bool, version: str) -> str:
    """Why nothing was rolled out: the gate, the champion or a person said no."""
    if version:
        return f"version {version} was rejected: nothing deployed"
    return (
        "the challenger did not pass the gate (accuracy >= 0.9 and 0.01 above the champion): "
        "nothing registered or deployed"
    )


@pipeline(name="retrain-on-drift")
def retrain_on_drift(
    drifted_features: str = "",
    fresh_data: str = "",
    demo_shift: float = 0.5,
    test_size: float = 0.25,
    seed: int = 0,
    top_k: int = 10,
) -> NamedTuple("Outputs", [("endpoint_url", str), ("model_uri", str)]):
    """Retrain on fresh data, beat the champion, approve and roll out as a canary."""
    fresh = load_fresh(
        drifted_features=drifted_features,
        fresh_data=fresh_data,
        demo_shift=demo_shift,
        test_size=test_size,
        seed=seed,
        top_k=top_k,
    )
    model = fit(data=fresh.outputs["data"])
    version = evaluate(model=model.outputs["model"], holdout=fresh.outputs["holdout"])
    with If(version.outputs["promoted"] == True):  # noqa: E712 - KFP conditions compare channels
        endpoint = predict(model_uri=version.outputs["model_uri"])
    with Else():
        skipped = not_deployed(
            promoted=version.outputs["promoted"], version=version.outputs["version"]
        )
    return Outputs(
        endpoint_url=OneOf(endpoint.outputs["url"], skipped.output),
        model_uri=version.outputs["model_uri"],
    )
