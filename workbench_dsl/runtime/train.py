"""Body of the ``@train`` launcher: run the training function here, as N local processes, or as a TrainJob.

* Local, one process: the function runs in this task process.
* Local, ``nodes * procs_per_node > 1``: that many processes wired as a
  torch.distributed job (``backends.trainer.local``); rank 0's return value and
  outputs are the step's.
* Cluster: a Kubeflow Trainer TrainJob (``backends.trainer.kubernetes``) whose
  pods download the inputs from their artifact URIs and upload rank 0's
  outputs to theirs; this launcher then fetches the outputs into its own
  output paths for KFP to record.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_dsl import _env
from workbench_dsl.runtime._invocation import (
    INVOCATION_FILE,
    INVOCATION_JSON,
    decode_return,
    dumps,
    split_arguments,
)
from workbench_dsl.runtime._lineage import reporting
from workbench_dsl.runtime._placement import on_cluster
from workbench_dsl.runtime._training_data import stamp_models
from workbench_dsl.runtime._user import load_function
from workbench_dsl.runtime.settings import TrainSettings

if TYPE_CHECKING:
    from workbench_dsl.backends.trainer.base import TrainJobSpec

RANK_MODULE = "workbench_dsl.runtime._rank"
POD_MODULE = "workbench_dsl.runtime._pod"


@reporting("train")
def launch(source: str, name: str, config_json: str, kwargs: dict[str, Any]) -> Any:
    """Run the training function ``name`` defined by ``source`` with the task's arguments."""
    settings = TrainSettings.from_json(json.loads(config_json))
    fn = load_function(source, name)
    # The wrapper hands over its locals(): keep the function's own arguments.
    wanted = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in wanted}
    if on_cluster():
        result = run_on_cluster(fn, source, name, settings, kwargs)
    else:
        result = run_locally(
            fn, source, name, kwargs, nodes=settings.nodes, procs_per_node=settings.procs_per_node
        )
    stamp_models(fn, kwargs)  # the registered version then knows its training data
    return result


def _apply_metadata(kwargs: dict[str, Any], metadata: dict[str, Any]) -> None:
    for out_name, meta in metadata.items():
        artifact = kwargs.get(out_name)
        if artifact is not None:
            artifact.metadata.clear()
            artifact.metadata.update(meta)


def run_locally(
    fn: Callable[..., Any],
    source: str,
    name: str,
    kwargs: dict[str, Any],
    *,
    nodes: int,
    procs_per_node: int,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> Any:
    """Call ``fn`` here (one process) or as a local torch.distributed job; return rank 0's value."""
    world = nodes * procs_per_node
    if world == 1:
        return fn(**kwargs)
    from workbench_dsl.backends.trainer.base import Trainer, TrainJobSpec
    from workbench_dsl.backends.trainer.local import LocalTrainer

    work = Path(tempfile.mkdtemp(prefix=f"train-{name}-", dir=workdir))
    try:
        params, artifacts = split_arguments(fn, kwargs, with_paths=True)
        inv = {
            "source": source,
            "name": name,
            "params": params,
            "artifacts": artifacts,
            "result_path": str(work / "result.json"),
            "scratch": str(work),
        }
        inv_path = work / "invocation.json"
        inv_path.write_text(dumps(inv), encoding="utf-8")
        _env.set_status(f"training: {nodes} node(s) x {procs_per_node} process(es)")
        spec = TrainJobSpec(
            name=name,
            module=RANK_MODULE,
            nodes=nodes,
            procs_per_node=procs_per_node,
            env={**(env or {}), INVOCATION_FILE: str(inv_path)},
        )
        trainer: Trainer = LocalTrainer(workdir=work)
        trainer.run(spec)
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _apply_metadata(kwargs, result.get("metadata") or {})
    return decode_return(result.get("return"), fn)


def launcher_pod_owner() -> dict[str, str] | None:
    """The KFP pod running this launcher, as an owner for what it creates (GC on deletion)."""
    pod, uid = os.environ.get("KFP_POD_NAME"), os.environ.get("KFP_POD_UID")
    return {"name": pod, "uid": uid} if pod and uid else None


def cluster_job_spec(name: str, settings: TrainSettings, env: dict[str, str]) -> TrainJobSpec:
    """The :class:`TrainJobSpec` of a step's settings (also a Katib trial's)."""
    from workbench_dsl.backends.trainer import artifacts as store
    from workbench_dsl.backends.trainer.base import SecretEnv, TrainJobSpec

    cl = settings.cluster
    full_env = {**settings.env, **env}
    if cl.artifact_endpoint:
        full_env[store.ENDPOINT] = cl.artifact_endpoint
    secret_env: tuple[SecretEnv, ...] = ()
    if cl.artifact_secret:
        secret_env = (
            SecretEnv("AWS_ACCESS_KEY_ID", cl.artifact_secret, "accesskey"),
            SecretEnv("AWS_SECRET_ACCESS_KEY", cl.artifact_secret, "secretkey"),
        )
    return TrainJobSpec(
        name=name,
        module=POD_MODULE,
        nodes=settings.nodes,
        procs_per_node=settings.procs_per_node,
        env=full_env,
        timeout=settings.timeout,
        runtime=settings.runtime,
        launcher=settings.launcher,
        image=cl.image,
        resources=cl.resources,
        node_selector=dict(cl.node_selector),
        tolerations=cl.tolerations,
        labels=dict(cl.labels),
        annotations=dict(cl.annotations),
        secret_env=secret_env,
    )


def run_on_cluster(
    fn: Callable[..., Any],
    source: str,
    name: str,
    settings: TrainSettings,
    kwargs: dict[str, Any],
    *,
    api_client: Any = None,
    poll_s: float = 2.0,
) -> Any:
    """Run the function as a TrainJob, then bring rank 0's outputs into this task."""
    from workbench_dsl.backends.trainer import artifacts as store
    from workbench_dsl.backends.trainer.base import Trainer, TrainingFailed
    from workbench_dsl.backends.trainer.kubernetes import KubernetesTrainer
    from workbench_dsl.backends.trainer.manifest import resource_name

    params, artifacts = split_arguments(fn, kwargs, with_paths=False)
    inv = {
        "source": source,
        "name": name,
        "params": params,
        "artifacts": artifacts,
        "launcher": settings.launcher,
        "packages": list(settings.cluster.packages),
    }
    spec = cluster_job_spec(name, settings, {INVOCATION_JSON: dumps(inv)})
    job_name = resource_name(name, os.environ.get("KFP_POD_UID") or uuid.uuid4().hex)
    trainer: Trainer = KubernetesTrainer(
        api_client=api_client,
        namespace=settings.cluster.namespace,
        poll_s=poll_s,
    )
    result = trainer.run(spec, name=job_name, owner=launcher_pod_owner())
    if result is None:
        raise TrainingFailed(
            f"TrainJob {job_name} completed but rank 0 printed no result line; "
            f"was its log cut short?"
        )
    for out_name, d in artifacts.items():
        if isinstance(d, dict) and d.get("output") and store.exists(d["uri"]):
            store.download(d["uri"], kwargs[out_name].path)
    _apply_metadata(kwargs, result.get("metadata") or {})
    return decode_return(result.get("return"), fn)


#: The launcher settings of the prebuilt components, from their plain parameters
#: (the name the prebuilt components' source calls).
job_config_from_parameters = TrainSettings.from_parameters


def call_arguments(
    fn: Callable[..., Any], arguments: dict[str, Any] | None, artifacts: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments of a prebuilt component's function: its parameters and artifacts.

    An artifact is passed only when the function has a parameter of that name.
    """
    wanted = inspect.signature(fn).parameters
    kwargs = dict(arguments or {})
    unknown = sorted(set(kwargs) - set(wanted))
    if unknown:
        raise TypeError(
            f"{fn.__name__}() got unexpected argument(s) {', '.join(map(repr, unknown))} "
            f"(parameters: {', '.join(wanted)})"
        )
    for name, artifact in artifacts.items():
        if artifact is not None and name in wanted:
            kwargs[name] = artifact
    return kwargs


def launch_prebuilt(
    function_source: str,
    function_name: str,
    arguments: dict[str, Any] | None,
    artifacts: dict[str, Any],
    config: TrainSettings,
) -> dict[str, Any]:
    """Body of the prebuilt ``train`` component: the function given as source text."""
    fn = load_function(function_source, function_name)
    kwargs = call_arguments(fn, arguments, artifacts)
    if on_cluster():
        value = run_on_cluster(fn, function_source, function_name, config, kwargs)
    else:
        value = run_locally(
            fn,
            function_source,
            function_name,
            kwargs,
            nodes=config.nodes,
            procs_per_node=config.procs_per_node,
        )
    for artifact in artifacts.values():
        # An output the function did not write is still an (empty) artifact to KFP.
        if artifact is not None and not os.path.exists(artifact.path):
            os.makedirs(artifact.path, exist_ok=True)
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"value": value}
