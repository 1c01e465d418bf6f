"""Sweep, then train: search a classifier's hyperparameters, fit the best, evaluate it.

Runs on scikit-learn's bundled breast-cancer dataset (no download). The sweep
trains an SGD classifier epoch by epoch and reports validation accuracy after
each, so ``medianstop`` can stop trials that fall behind; the final model is
trained with the best parameters by a ``@train`` step.

    workbench run pipelines/sweep_then_train.py -p trials=12
    workbench compile pipelines/sweep_then_train.py -o sweep_then_train.yaml
"""

from workbench_dsl import (
    Dataset,
    Input,
    Metrics,
    Model,
    Output,
    develop,
    pipeline,
    space,
    sweep,
    train,
)


@develop(preset="sklearn")
def load_data(test_size: float, data: Output[Dataset], holdout: Output[Dataset]):
    """Split the bundled breast-cancer dataset into training and held-out parts."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train_part, test_part = train_test_split(frame, test_size=test_size, random_state=0)
    train_part.to_csv(data.path, index=False)
    test_part.to_csv(holdout.path, index=False)
    data.metadata["rows"] = len(train_part)


@sweep(
    space={
        "alpha": space.loguniform(1e-6, 1e-1),
        "penalty": space.categorical(["l2", "l1", "elasticnet"]),
        "eta0": space.loguniform(1e-4, 1.0),
    },
    objective="accuracy",
    goal="maximize",
    algorithm="tpe",
    max_trials=12,
    parallel_trials=2,
    early_stopping={"algorithm": "medianstop", "min_trials_required": 3, "start_step": 3},
    seed=0,
    preset="sklearn",
)
def tune(data: Input[Dataset], epochs: int, alpha: float, penalty: str, eta0: float) -> dict:
    """One trial: train for `epochs` passes, reporting validation accuracy after each."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from workbench_dsl import report

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_fit)
    X_fit, X_val = scaler.transform(X_fit), scaler.transform(X_val)
    clf = SGDClassifier(
        alpha=alpha, penalty=penalty, learning_rate="constant", eta0=eta0, random_state=0
    )
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        clf.partial_fit(X_fit, y_fit, classes=np.array([0, 1]))
        accuracy = float(clf.score(X_val, y_val))
        report(step=epoch, accuracy=accuracy)
    return {"accuracy": accuracy}


@train(preset="sklearn")
def fit(data: Input[Dataset], params: dict, epochs: int, model: Output[Model]) -> float:
    """Train the final classifier on all training data with the sweep's best parameters."""
    import pickle

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    scaler = StandardScaler().fit(X)
    clf = SGDClassifier(learning_rate="constant", random_state=0, **params)
    for _ in range(epochs):
        clf.partial_fit(scaler.transform(X), y, classes=np.array([0, 1]))
    with open(model.path, "wb") as f:
        pickle.dump(make_pipeline(scaler, clf), f)
    model.metadata.update({"framework": "sklearn", **params})
    return float(clf.score(scaler.transform(X), y))


@develop(preset="sklearn")
def evaluate(model: Input[Model], holdout: Input[Dataset], metrics: Output[Metrics]) -> float:
    """Accuracy on the held-out split."""
    import pickle

    import pandas as pd

    frame = pd.read_csv(holdout.path)
    with open(model.path, "rb") as f:
        clf = pickle.load(f)
    accuracy = float(clf.score(frame.drop(columns=["target"]).to_numpy(), frame["target"]))
    metrics.log_metric("accuracy", accuracy)
    return accuracy


@pipeline(name="sweep-then-train")
def sweep_then_train(test_size: float = 0.25, epochs: int = 8) -> float:
    """Tune an SGD classifier with a sweep, train the best, and evaluate it."""
    data = load_data(test_size=test_size)
    best = tune(data=data.outputs["data"], epochs=epochs)
    model = fit(data=data.outputs["data"], params=best.outputs["best_params"], epochs=epochs)
    scores = evaluate(model=model.outputs["model"], holdout=data.outputs["holdout"])
    return scores.outputs["Output"]
