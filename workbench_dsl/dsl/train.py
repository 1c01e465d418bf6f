"""``@train``: a training function as a (distributed) training job, locally or as a Kubeflow TrainJob.

The compiled component is a launcher (``dsl/_launcher.py``) with the function's
own KFP interface. Locally it runs the function in the task's process, or in
``nodes * procs_per_node`` processes wired as a torch.distributed job; on a
cluster it creates a Kubeflow Trainer v2 TrainJob with ``numNodes``,
``numProcPerNode`` and the compute profile's resources per node.
See https://www.kubeflow.org/docs/components/trainer/overview/
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from workbench_dsl.backends.trainer.base import TORCHRUN_ENV
from workbench_dsl.config import Config
from workbench_dsl.dsl._cluster import ClusterWorkStep
from workbench_dsl.dsl._options import StepOptions
from workbench_dsl.dsl._where import function_location
from workbench_dsl.errors import PipelineDefinitionError
from workbench_dsl.runtime.settings import TrainSettings

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent

P = ParamSpec("P")
R = TypeVar("R")

_RUNTIME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _count(step: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PipelineDefinitionError(f"{step}: {name} must be a whole number >= 1 (got {value!r})")
    return value


class TrainStep(ClusterWorkStep[P, R]):
    """A ``@train`` step: the function plus its job shape (nodes, processes, runtime)."""

    kind = "train"

    def __init__(
        self,
        fn: Callable[P, R],
        options: StepOptions,
        *,
        nodes: int = 1,
        procs_per_node: int = 1,
        runtime: str = "torch-distributed",
    ) -> None:
        super().__init__(fn, options)
        self.nodes = nodes
        self.procs_per_node = procs_per_node
        self.runtime = runtime

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    def job_config(self, config: Config) -> TrainSettings:
        """What the launcher needs at run time (also what a sweep's trials use)."""
        from workbench_dsl.dsl._cluster import cluster_settings

        profile = config.profile(self.options.profile)
        preset = config.preset(self.options.preset) if self.options.preset else None
        return TrainSettings(
            step=self.name,
            nodes=self.nodes,
            procs_per_node=self.procs_per_node,
            runtime=self.runtime,
            env=dict(self.options.env),
            timeout=self.options.timeout,
            cluster=cluster_settings(config, profile, preset),
        )

    def _build_component(self, config: Config) -> BaseComponent:
        from workbench_dsl.dsl._cluster import artifact_kind, check_no_paths, resolved_hints
        from workbench_dsl.dsl._launcher import build_launcher, signature_source
        from workbench_dsl.dsl._where import function_location

        hints = resolved_hints(self.fn)
        check_no_paths(self.fn, self.kind, hints)
        if "return" in hints and artifact_kind(hints["return"]) is not None:
            raise PipelineDefinitionError(
                f"{function_location(self.fn)}: @train {self.name}() returns an artifact; "
                f"write it to an Output[...] parameter instead"
            )
        sig = signature_source(self.fn)
        preset = config.preset(self.options.preset) if self.options.preset else None
        return build_launcher(
            self.fn,
            kind="train",
            params=list(sig.params.values()),
            returns=sig.returns,
            config=self.job_config(config).to_json(),
            image=config.runtime_image,
            packages=list(preset.packages) if preset else (),
            pip_index_urls=list(preset.pip_index_urls) if preset else (),
        )


@overload
def train(fn: Callable[P, R], /) -> TrainStep[P, R]: ...


@overload
def train(
    fn: None = None,
    /,
    *,
    nodes: int = 1,
    procs_per_node: int = 1,
    profile: str | None = None,
    runtime: str = "torch-distributed",
    preset: str | None = None,
    env: dict[str, Any] | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
) -> Callable[[Callable[P, R]], TrainStep[P, R]]: ...


def train(
    fn: Callable[P, R] | None = None,
    /,
    *,
    nodes: int = 1,
    procs_per_node: int = 1,
    profile: str | None = None,
    runtime: str = "torch-distributed",
    preset: str | None = None,
    env: dict[str, Any] | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
) -> TrainStep[P, R] | Callable[[Callable[P, R]], TrainStep[P, R]]:
    """Make a training function a pipeline step that runs as a (distributed) training job.

    With more than one process in all, the function runs once per process with
    torch.distributed already initialised (gloo on CPU, nccl with one GPU per
    process); rank 0's return value and outputs are the step's.

    Args:
        nodes: Machines (TrainJob ``numNodes``); locally, groups of processes.
        procs_per_node: Processes per node, typically one per GPU.
        profile: Compute per node (CPU, memory, GPUs, scheduling), by name.
        runtime: The Kubeflow Trainer ClusterTrainingRuntime to use on a cluster.
        preset: Packages the training code needs, by name from ``workbench.toml``.
        env: Environment variables for every process.
        cache: Reuse a previous result when the inputs are the same.
        retries: How many times to retry a failed job.
        retry_backoff: Wait before the first retry (seconds or ``"30s"``), doubling after.
        timeout: Stop and fail a job that runs longer (seconds or ``"2h"``).
    """

    def wrap(f: Callable[P, R]) -> TrainStep[P, R]:
        step = getattr(f, "__name__", "step")
        n = _count(step, "nodes", nodes)
        ppn = _count(step, "procs_per_node", procs_per_node)
        if not isinstance(runtime, str) or not _RUNTIME.match(runtime):
            raise PipelineDefinitionError(
                f"{step}: runtime must name a Kubeflow Trainer runtime such as "
                f"'torch-distributed' (got {runtime!r})"
            )
        options = StepOptions.build(
            step,
            preset=preset,
            profile=profile,
            cache=cache,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            env=env,
        )
        reserved = sorted(set(options.env) & set(TORCHRUN_ENV))
        if reserved and runtime.startswith("torch"):
            # Trainer's torch plugin refuses them (pkg/runtime/framework/plugins/torch/torch.go).
            raise PipelineDefinitionError(
                f"{function_location(f)}: {step}: env sets {', '.join(reserved)}, which torchrun "
                f"reserves; Kubeflow Trainer refuses a TrainJob that sets them: drop them"
            )
        return TrainStep(f, options, nodes=n, procs_per_node=ppn, runtime=runtime)

    return wrap(fn) if fn is not None else wrap
