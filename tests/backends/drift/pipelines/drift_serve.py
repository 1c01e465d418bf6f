"""Train on a small generated table, register, serve: the endpoint whose drift the tests measure.

``size`` (numeric, normal around 10) and ``colour`` (categorical, red/green/blue) are the
features; ``label`` is the target, named in the dataset's metadata. The model gets rows as
lists ``[size, colour_code]``.
"""

from workbench_dsl import Dataset, Input, Model, Output, develop, pipeline, register, serve


@develop(preset="sklearn")
def make_data(rows: int, data: Output[Dataset], holdout: Output[Dataset]):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    size = rng.normal(10.0, 2.0, rows)
    colour = rng.choice([0, 1, 2], rows, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({"size": size, "colour": colour, "label": (size > 10).astype(int)})
    frame.iloc[: rows * 3 // 4].to_csv(data.path, index=False)
    frame.iloc[rows * 3 // 4 :].to_csv(holdout.path, index=False)
    data.metadata["label"] = "label"


@develop(preset="sklearn")
def fit(data: Input[Dataset], model: Output[Model]):
    import pickle

    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.read_csv(data.path)
    X, y = frame[["size", "colour"]].to_numpy(), frame["label"].to_numpy()
    with open(model.path, "wb") as f:
        pickle.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y), f)
    model.metadata["framework"] = "sklearn"


@register(model="drift-demo", preset="sklearn")
def evaluate(model: Input[Model], holdout: Input[Dataset]) -> dict:
    return {"accuracy": 1.0}


@serve(endpoint="drift-demo", protocol="v2")
def predict(model, instances):
    return model.predict(instances).tolist()


@pipeline(name="drift-serve")
def drift_serve(rows: int = 400):
    d = make_data(rows=rows)
    m = fit(data=d.outputs["data"])
    v = evaluate(model=m.outputs["model"], holdout=d.outputs["holdout"])
    predict(model_uri=v.outputs["model_uri"])
