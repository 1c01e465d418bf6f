"""Parameters, artifacts, return values and NamedTuple returns."""

from typing import NamedTuple

from workbench_dsl import Dataset, Input, Metrics, Model, Output, develop, pipeline


@develop(preset="data")
def make_rows(rows: int, greeting: str, data: Output[Dataset]) -> int:
    with open(data.path, "w") as f:
        for i in range(rows):
            f.write(f"{greeting},{i}\n")
    return rows


@develop
def fit(
    data: Input[Dataset], scale: float, model: Output[Model], metrics: Output[Metrics]
) -> NamedTuple("FitOutputs", [("score", float), ("label", str)]):
    with open(data.path) as f:
        n = len(f.readlines())
    with open(model.path, "w") as f:
        f.write(str(n * scale))
    metrics.log_metric("rows", n)
    return (n * scale, "ok")


@develop
def summarize(score: float, label: str, options: dict, tags: list) -> str:
    return f"{label}:{score}:{sorted(options)}:{len(tags)}"


@pipeline(name="basic-io", description="Parameters and artifacts in and out.")
def basic_io(rows: int = 10, greeting: str = "hi", scale: float = 0.5) -> str:
    made = make_rows(rows=rows, greeting=greeting)
    fitted = fit(data=made.outputs["data"], scale=scale)
    return summarize(
        score=fitted.outputs["score"], label=fitted.outputs["label"], options={"a": 1}, tags=[1, 2]
    ).output
