"""Sweep and register: search a gradient-boosting model's hyperparameters, train the best, register it if it passes the gate.

No deployment and no person in the loop: the version that clears the gate is
registered in MLflow with the alias ``candidate``, ready for a
``train-deploy``-style rollout or a scheduled comparison. Runs on
scikit-learn's bundled wine dataset (three classes, no download).

    workbench recipe run sweep-register
    workbench recipe run sweep-register -p test_size=0.25
    workbench schedule add recipes/sweep_register.py --cron "0 3 * * 0" --name weekly-sweep
"""

from workbench_dsl import (
    Dataset,
    Input,
    Model,
    Output,
    develop,
    pipeline,
    register,
    space,
    sweep,
    train,
)


@develop(preset="sklearn")
def load_wine(test_size: float, data: Output[Dataset], holdout: Output[Dataset]):
    """Split scikit-learn's bundled wine dataset into training and held-out CSVs."""
    from sklearn.datasets import load_wine as wine
    from sklearn.model_selection import train_test_split

    frame = wine(as_frame=True).frame
    train_part, test_part = train_test_split(
        frame, test_size=test_size, random_state=0, stratify=frame["target"]
    )
    train_part.to_csv(data.path, index=False)
    test_part.to_csv(holdout.path, index=False)


@sweep(
    space={
        "learning_rate": space.loguniform(0.01, 0.5),
        "max_depth": space.integer(2, 6),
        "max_iter": space.categorical([50, 100, 200]),
    },
    objective="accuracy",
    goal="maximize",
    algorithm="random",
    max_trials=6,
    parallel_trials=2,
    seed=1,
    preset="sklearn",
)
def search(data: Input[Dataset], learning_rate: float, max_depth: int, max_iter: int) -> dict:
    """One trial: 3-fold cross-validated accuracy of a histogram gradient-boosting classifier."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]), frame["target"]
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate, max_depth=max_depth, max_iter=max_iter, random_state=0
    )
    return {"accuracy": float(cross_val_score(model, X, y, cv=3).mean())}


@train(preset="sklearn")
def fit_best(data: Input[Dataset], params: dict, model: Output[Model]) -> float:
    """Train the best configuration on the whole training part; returns training accuracy."""
    import pickle

    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = pd.read_csv(data.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    estimator = HistGradientBoostingClassifier(random_state=0, **params).fit(X, y)
    with open(model.path, "wb") as f:
        pickle.dump(estimator, f)
    model.metadata.update({"framework": "sklearn", **params})
    return float(estimator.score(X, y))


@register(
    model="wine-classifier", gate={"accuracy": ">= 0.85"}, alias="candidate", preset="sklearn"
)
def score(model: Input[Model], holdout: Input[Dataset]) -> dict:
    """Held-out accuracy and macro F1."""
    import pickle

    import pandas as pd
    from sklearn.metrics import f1_score

    frame = pd.read_csv(holdout.path)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    with open(model.path, "rb") as f:
        estimator = pickle.load(f)
    predicted = estimator.predict(X)
    return {
        "accuracy": float((predicted == y).mean()),
        "f1_macro": float(f1_score(y, predicted, average="macro")),
    }


@pipeline(name="sweep-register")
def sweep_register(test_size: float = 0.3) -> str:
    """Sweep, train the best, and register it as `candidate` if it clears the gate."""
    split = load_wine(test_size=test_size)
    best = search(data=split.outputs["data"])
    model = fit_best(data=split.outputs["data"], params=best.outputs["best_params"])
    version = score(model=model.outputs["model"], holdout=split.outputs["holdout"])
    return version.outputs["model_uri"]
