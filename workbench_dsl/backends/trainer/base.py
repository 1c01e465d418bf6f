"""The trainer interface: run one training program as a (possibly distributed) job.

A :class:`TrainJobSpec` says what every process runs (``python -m <module>``)
and how many of them (``nodes`` x ``procs_per_node``), plus the compute each
node needs on a cluster. ``local.LocalTrainer`` runs it as local processes
wired as a torch.distributed job; ``kubernetes.KubernetesTrainer`` creates a
Kubeflow Trainer v2 TrainJob. Both raise :class:`TrainingFailed` with the
failing rank's error, and both leave nothing running when they return.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# One type per concept, shared with the decorators (re-exported for the backends' users).
from workbench_dsl.compute import Resources, Toleration

__all__ = ["TORCHRUN_ENV", "Resources", "Toleration", "Trainer"]

#: The environment torchrun's launcher sets; Trainer's torch plugin refuses a
#: TrainJob whose trainer env sets any (kubeflow/trainer pkg/constants/constants.go).
TORCHRUN_ENV = (
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "PET_NODE_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
)
#: What the ``torch`` extra is called, for error messages.
TORCH_EXTRA = "pip install 'workbench-dsl[torch]'"
#: A line rank 0 prints on a cluster with the function's result as JSON; the
#: trainer takes it out of the log stream and hands it back to the launcher.
RESULT_MARKER = "WORKBENCH_RESULT "


class TrainingFailed(Exception):
    """A rank (or the TrainJob) failed; the message is the user's error in one line."""

    def __init__(
        self, message: str, *, rank: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.rank = rank
        self.error_type = error_type


class TrainingTimedOut(TrainingFailed):
    """The job ran past its timeout and was stopped."""


class TorchMissing(ImportError):
    """Distributed training was asked for but PyTorch is not installed."""


def require_torch(what: str) -> None:
    """Fail with the fix when torch cannot be imported (checked without importing it)."""
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise TorchMissing(
            f"{what} runs torch.distributed and needs PyTorch, which is not installed here: "
            f"{TORCH_EXTRA}"
        )


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable read from a Kubernetes Secret's key."""

    name: str
    secret: str
    key: str


@dataclass(frozen=True)
class TrainJobSpec:
    """One training job.

    Attributes:
        name: The step's name (used in resource names and log prefixes).
        module: The Python module every process runs (``python -m module``).
        nodes: Nodes (pods on a cluster; groups of processes locally).
        procs_per_node: Processes per node (one per GPU, typically).
        env: Extra environment for every process.
        timeout: Seconds before the job is stopped and fails, or None.
        runtime: The Trainer runtime to reference (cluster).
        launcher: ``"torchrun"`` or ``"python"``: how a node starts its processes (cluster).
        image: The trainer container image (cluster; None keeps the runtime's).
        resources: Compute per node (cluster).
        node_selector: Node labels the pods need (cluster).
        tolerations: Taints the pods tolerate (cluster).
        labels: Labels for the pods (cluster).
        annotations: Annotations for the pods (cluster).
        secret_env: Variables read from Secrets (object-store credentials, cluster).
    """

    name: str
    module: str
    nodes: int = 1
    procs_per_node: int = 1
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    runtime: str = "torch-distributed"
    launcher: str = "torchrun"
    image: str | None = None
    resources: Resources = field(default_factory=Resources)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node


@runtime_checkable
class Trainer(Protocol):
    """The one shape of a trainer: ``local.LocalTrainer`` and ``kubernetes.KubernetesTrainer``.

    ``run`` returns when every process has finished, or raises
    :class:`TrainingFailed`; nothing it started is left running either way.
    """

    def run(
        self, spec: TrainJobSpec, *, name: str | None = None, owner: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """Run ``spec`` as the job ``name`` (default ``spec.name``), owned by ``owner``.

        Returns rank 0's result when the trainer collects it (a TrainJob's rank 0
        prints it in its log); a local rank 0 writes it to its invocation's
        result file instead and None is returned. ``owner`` is the object whose
        deletion deletes the job on a cluster (the launcher pod); local processes
        are owned by the run and ignore it.
        """
        ...
