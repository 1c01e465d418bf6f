"""A sweep whose trials all fail, or hang (docs/runbooks/sweep-trials.md)."""

from workbench_dsl import develop, pipeline, space, sweep


@develop
def prepare(rows: int) -> int:
    return rows


@sweep(
    space={"x": space.uniform(0.0, 1.0)},
    objective="score",
    algorithm="random",
    max_trials=2,
    parallel_trials=1,
    seed=0,
    timeout="15s",
)
def tune(rows: int, hang_s: float, x: float) -> dict:
    import time

    if rows <= 0:
        raise ValueError(f"no rows to fit (rows={rows})")
    time.sleep(hang_s)
    return {"score": x}


@pipeline(name="sweep-trials")
def sweep_trials(rows: int = 10, hang_s: float = 0.0) -> float:
    prepared = prepare(rows=rows)
    return tune(rows=prepared.output, hang_s=hang_s).outputs["best_value"]
