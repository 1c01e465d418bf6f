"""Train, register and serve a tiny model, for the @serve replay test (a file: the DSL reads sources)."""

from workbench_dsl import Input, Model, Output, develop, pipeline, register, serve


@develop(preset="sklearn")
def fit(model: Output[Model]):
    import pickle

    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit([[0.0, 0.0], [1.0, 1.0], [0.1, 0.0], [0.9, 1.0]], [0, 1, 0, 1])
    with open(model.path, "wb") as f:
        pickle.dump(clf, f)
    model.metadata["framework"] = "sklearn"


@register(model="replay-serve", gate={"accuracy": ">= 0.5"}, preset="sklearn")
def judge(model: Input[Model]) -> dict:
    return {"accuracy": 1.0}


@serve(endpoint="replay-serve", protocol="v2")
def predict(model, instances):
    return [float(p) for p in model.predict_proba(instances)[:, 1]]


@pipeline(name="serve-steps")
def serve_steps():
    m = fit()
    r = judge(model=m.outputs["model"])
    predict(model_uri=r.outputs["model_uri"])
