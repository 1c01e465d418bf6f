"""A model served at an endpoint; the runbook's test breaks the predictor of a second version,
which goes out as a canary (docs/runbooks/endpoint-errors.md)."""

from workbench_dsl import Input, Model, Output, develop, pipeline, register, serve


@develop(preset="sklearn")
def fit(seed: int, model: Output[Model]):
    import pickle

    from sklearn.dummy import DummyClassifier

    with open(model.path, "wb") as f:
        pickle.dump(DummyClassifier(strategy="constant", constant=seed).fit([[0], [1]], [0, 1]), f)
    model.metadata["framework"] = "sklearn"


@register(model="runbook-canary", preset="sklearn")
def evaluate(model: Input[Model]) -> dict:
    return {"accuracy": 1.0}


@serve(endpoint="runbook-canary", canary_percent=50, protocol="v2")
def predict(model, instances):
    return model.predict(instances).tolist()


@pipeline(name="runbook-canary")
def canary(seed: int = 0):
    trained = fit(seed=seed)
    version = evaluate(model=trained.outputs["model"])
    predict(model_uri=version.outputs["model_uri"])
