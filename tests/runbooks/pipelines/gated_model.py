"""A model whose run succeeds but whose version only reaches production past the gate
(docs/runbooks/model-not-in-production.md)."""

from workbench_dsl import Input, Model, Output, develop, pipeline, register


@develop(preset="sklearn")
def fit(model: Output[Model]):
    import pickle

    from sklearn.dummy import DummyClassifier

    with open(model.path, "wb") as f:
        pickle.dump(DummyClassifier().fit([[0], [1]], [0, 1]), f)
    model.metadata["framework"] = "sklearn"


@register(
    model="gated-model",
    gate={"accuracy": ">= 0.9"},
    alias="staging",
    promote_to="production",
    preset="sklearn",
)
def evaluate(model: Input[Model], accuracy: float) -> dict:
    return {"accuracy": accuracy}


@pipeline(name="gated-model")
def gated_model(accuracy: float = 0.95):
    trained = fit()
    evaluate(model=trained.outputs["model"], accuracy=accuracy)
