"""Prebuilt ``sweep``: a hyperparameter search over a Python trial function, as Katib or Optuna.

For plain-KFP pipelines that want a Katib Experiment without writing the glue,
and without the data-passing problem (kubeflow/katib#1846): the ``data`` input
reaches every trial. The trial function comes as source text; it takes the
searched parameters (named in ``space``), any ``arguments``, and when it has
parameters of these names the ``data`` input and a ``model`` output, and returns
a dict of metrics. ``space`` is JSON: ``{"lr": {"type": "loguniform", "low":
1e-4, "high": 0.1}, "depth": {"type": "integer", "low": 2, "high": 8}, "opt":
{"type": "categorical", "values": ["adam", "sgd"]}}`` (types: ``uniform``,
``loguniform``, ``integer``, ``categorical``, ``grid``). Algorithms and early
stopping by Katib's names. With ``nodes * procs_per_node > 1`` every trial is a
distributed training job (a TrainJob on a cluster). Outputs: ``best_params``,
``best_value``, ``trials`` (CSV, one row per trial), ``best_model``.

    from kfp import components
    sweep = components.load_component_from_file("components/sweep.yaml")
"""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE


@dsl.component(base_image=DEFAULT_RUNTIME_IMAGE)
def sweep(
    function_source: str,
    function_name: str,
    space: dict,
    objective: str,
    trials: Output[Dataset],
    best_model: Output[Model],
    goal: str = "maximize",
    algorithm: str = "tpe",
    max_trials: int = 20,
    parallel_trials: int = 2,
    max_failed_trials: int = -1,
    early_stopping: str = "",
    seed: int = -1,
    arguments: Optional[dict] = None,  # noqa: UP045 - KFP reads Optional[...], not X | None
    data: Optional[Input[Dataset]] = None,  # noqa: UP045
    nodes: int = 1,
    procs_per_node: int = 1,
    runtime: str = "torch-distributed",
    cpu: str = "",
    memory: str = "",
    gpus: int = 0,
    gpu_resource: str = "nvidia.com/gpu",
    image: str = "",
    namespace: str = "",
    artifact_store: str = "",
    artifact_secret: str = "",
    env: Optional[dict] = None,  # noqa: UP045
) -> NamedTuple("SweepOutputs", [("best_params", dict), ("best_value", float)]):
    """Search hyperparameters with Katib (cluster) or Optuna (local); output the best trial."""
    from workbench_dsl.backends.sweeper.base import SweepSettings
    from workbench_dsl.runtime.sweep import launch_prebuilt
    from workbench_dsl.runtime.train import job_config_from_parameters

    search = SweepSettings.from_parameters(
        space=space,
        objective=objective,
        goal=goal,
        algorithm=algorithm,
        max_trials=max_trials,
        parallel_trials=parallel_trials,
        max_failed_trials=max_failed_trials,
        early_stopping=early_stopping,
        seed=seed,
    )
    job = job_config_from_parameters(
        nodes=nodes,
        procs_per_node=procs_per_node,
        runtime=runtime,
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        gpu_resource=gpu_resource,
        image=image,
        namespace=namespace,
        artifact_store=artifact_store,
        artifact_secret=artifact_secret,
        env=env,
        timeout_s=0.0,
    )
    artifacts = {"data": data, "model": None}
    return launch_prebuilt(
        function_source, function_name, search, arguments, artifacts, trials, best_model, job
    )


COMPONENT = sweep
