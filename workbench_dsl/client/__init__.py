"""Past runs as data, for notebooks and scripts: read-only, safe while runs go on.

Example::

    from workbench_dsl import latest_run

    run = latest_run("quickstart", status="SUCCEEDED")
    print(run.params, run.metrics)
    model = run.task("train-model").outputs["model"].load()     # checked against its digest
    frame = run.task("load-data").outputs["data"].load()         # a pandas DataFrame
"""

from workbench_dsl.client._artifacts import ArtifactChanged, ArtifactRef
from workbench_dsl.client._runs import Run, Task, get_run, latest_run, list_runs
from workbench_dsl.client.compare import compare_runs

__all__ = [
    "ArtifactChanged",
    "ArtifactRef",
    "Run",
    "Task",
    "compare_runs",
    "get_run",
    "latest_run",
    "list_runs",
]
