"""A pipeline whose own code tries every way to approve the version its run waits on.

``attack`` runs beside ``evaluate`` (a manual approval) and, once the version is
pending, runs ``attacks.py`` in its own process (so the task's own interpreter,
environment and registry access are the attacker's).
"""

from workbench_dsl import Input, Model, Output, develop, pipeline, register


@develop(preset="sklearn")
def make_model(model: Output[Model]):
    import pickle

    from sklearn.dummy import DummyClassifier

    with open(model.path, "wb") as f:
        pickle.dump(DummyClassifier().fit([[0], [1]], [0, 1]), f)
    model.metadata["framework"] = "sklearn"


@register(model="churn", approval="manual", promote_to="production", approval_timeout="10m")
def evaluate(model: Input[Model]) -> dict:
    return {"accuracy": 1.0}


@develop(preset="sklearn")
def attack(script: str, report: str) -> str:
    import runpy
    import sys

    if not script:
        return "no attack"
    sys.argv = [script, report]
    runpy.run_path(script, run_name="__main__")
    return "done"


@pipeline(name="self-approval")
def self_approval(script: str, report: str):
    m = make_model()
    evaluate(model=m.outputs["model"])
    attack(script=script, report=report)
