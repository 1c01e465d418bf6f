"""A pipeline of launcher steps for the replay tests (a file: the DSL reads step sources)."""

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


@develop
def make(data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write("3\n4\n")


@sweep(
    space={"k": space.integer(1, 9)},
    objective="score",
    goal="maximize",
    max_trials=2,
    parallel_trials=1,
    seed=1,
)
def tune(data: Input[Dataset], k: int) -> dict:
    with open(data.path) as f:
        total = sum(int(line) for line in f)
    return {"score": float(total * k)}


@train
def fit(data: Input[Dataset], params: dict, model: Output[Model]) -> float:
    import os
    import pickle

    with open(model.path, "wb") as f:
        pickle.dump({"k": params["k"]}, f)
    model.metadata["framework"] = "sklearn"
    return (
        float(os.environ.get("WORLD_SIZE", "1")) * 100
        + float(os.environ.get("RANK", "0"))
        + params["k"]
    )


@register(model="replay-demo", gate={"score": ">= 0.5"})
def judge(model: Input[Model], data: Input[Dataset]) -> dict:
    return {"score": 0.75}


@pipeline(name="launcher-steps")
def launcher_steps() -> float:
    d = make()
    s = tune(data=d.outputs["data"])
    m = fit(data=d.outputs["data"], params=s.outputs["best_params"])
    judge(model=m.outputs["model"], data=d.outputs["data"])
    return m.outputs["Output"]
