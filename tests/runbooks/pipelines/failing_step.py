"""A step that fails until the file it reads exists (docs/runbooks/failed-step.md)."""

from workbench_dsl import Dataset, Input, Output, develop, pipeline


@develop
def prepare(rows: int, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write("\n".join(str(i) for i in range(rows)))


@develop
def join(data: Input[Dataset], lookup: str) -> int:
    import os

    if not os.path.exists(lookup):
        raise FileNotFoundError(f"lookup table {lookup} is missing")
    with open(data.path) as f, open(lookup) as g:
        return len(f.read().split()) + len(g.read().split())


@pipeline(name="failing-step")
def failing_step(lookup: str, rows: int = 4) -> int:
    prepared = prepare(rows=rows)
    return join(data=prepared.outputs["data"], lookup=lookup).output
