"""Prebuilt ``train``: run a Python training function as a (distributed) training job.

For plain-KFP pipelines that want a Kubeflow Trainer TrainJob without writing
the glue. The function comes as source text (``inspect.getsource(fn)``) and is
called with ``arguments`` plus, when it has parameters of these names, the
``data`` input and the ``model`` output (KFP artifact objects, as in a
lightweight component). On a cluster it creates a TrainJob (``nodes``,
``procs_per_node``, per-node ``cpu``/``memory``/``gpus``, ``runtime``), streams
its logs and fetches rank 0's model; under ``workbench run`` it runs the
function as local processes wired as torch.distributed. Output ``metrics``: the
function's returned dict (a non-dict value comes back as ``{"value": ...}``).

    from kfp import components
    train = components.load_component_from_file("components/train.yaml")
    train(function_source=SOURCE, function_name="fit", arguments={"lr": 0.1},
          data=prep.outputs["data"], nodes=2, gpus=1)
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE


@dsl.component(base_image=DEFAULT_RUNTIME_IMAGE)
def train(
    function_source: str,
    function_name: str,
    model: Output[Model],
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
    timeout_s: float = 0.0,
) -> dict:
    """Run a training function as a TrainJob (cluster) or local torch.distributed processes."""
    from workbench_dsl.runtime.train import job_config_from_parameters, launch_prebuilt

    config = job_config_from_parameters(
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
        timeout_s=timeout_s,
    )
    return launch_prebuilt(
        function_source, function_name, arguments, {"data": data, "model": model}, config
    )


COMPONENT = train
