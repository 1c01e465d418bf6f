"""The typed settings the ``@train`` and ``@sweep`` launchers carry, written once by the decorator, read strictly.

``@train`` writes a :class:`TrainSettings` into its compiled component as JSON
(:meth:`TrainSettings.to_json`, whose keys and values are exactly what earlier
components carried, so compiled YAML does not change); the launcher, the Katib
trial template and ``workbench plan`` read it back with
:meth:`TrainSettings.from_json`, which refuses an unknown key or a value of the
wrong type with one line instead of guessing. The prebuilt ``train``/``sweep``
components build the same type from their plain parameters
(:meth:`TrainSettings.from_parameters`). ``@sweep`` writes a
:class:`SweepStepSettings` the same way: its search is the sweepers' own
``SweepSettings`` (in ``backends/``, which may not import this layer), beside
what each trial runs. They live in ``runtime/`` because the DSL may import the
runtime and never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from workbench_dsl._settings import SettingsError, count, fail, known, opt_str, str_map, text
from workbench_dsl.backends.sweeper.base import SweepSettings
from workbench_dsl.compute import ClusterSettings, Resources

#: The Kubeflow Trainer runtime a TrainJob uses when the step names none.
DEFAULT_RUNTIME = "torch-distributed"


@dataclass(frozen=True)
class TrainSettings:
    """The job shape of a ``@train`` step: where and how its function runs.

    Attributes:
        step: The step's name (the TrainJob's name prefix); None for a prebuilt component.
        nodes: Machines (TrainJob ``numNodes``); locally, groups of processes.
        procs_per_node: Processes per node.
        runtime: The Kubeflow Trainer ClusterTrainingRuntime.
        env: Environment variables for every process.
        timeout: Seconds before the job is stopped and failed (None: no limit).
        cluster: Image, namespace, object store and compute of the work pods.
    """

    step: str | None = None
    nodes: int = 1
    procs_per_node: int = 1
    runtime: str = DEFAULT_RUNTIME
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    @property
    def world_size(self) -> int:
        """Processes in all."""
        return self.nodes * self.procs_per_node

    @property
    def launcher(self) -> str:
        """How each process is started: ``torchrun`` for a torch runtime, else ``python``."""
        return "torchrun" if self.runtime.startswith("torch") else "python"

    def single_process(self) -> TrainSettings:
        """These settings for one process (what a Katib trial of a plain ``@sweep`` runs)."""
        return TrainSettings(
            step=self.step, env=dict(self.env), timeout=self.timeout, cluster=self.cluster
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON a launcher component carries (stable keys, unset values as null)."""
        return {
            "step": self.step,
            "nodes": self.nodes,
            "procs_per_node": self.procs_per_node,
            "runtime": self.runtime,
            "env": dict(self.env),
            "timeout": self.timeout,
            "cluster": self.cluster.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> TrainSettings:
        """Read what :meth:`to_json` wrote; an unknown key or a mistyped value is an error."""
        what = "train settings"
        known(what, data, (f.name for f in fields(cls)))
        runtime = data.get("runtime", DEFAULT_RUNTIME)
        if not isinstance(runtime, str) or not runtime:
            raise fail(what, "runtime", "a Kubeflow Trainer runtime name", runtime)
        timeout = data.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise fail(what, "timeout", "a number of seconds > 0 or null", timeout)
        cluster = data.get("cluster")
        if cluster is not None and not isinstance(cluster, dict):
            raise fail(what, "cluster", "an object", cluster)
        try:
            cluster_settings = ClusterSettings.from_json(cluster)
        except (TypeError, ValueError) as e:
            raise SettingsError(f"{what}: cluster: {e}") from None
        return cls(
            step=opt_str(what, "step", data.get("step")),
            nodes=count(what, "nodes", data.get("nodes", 1)),
            procs_per_node=count(what, "procs_per_node", data.get("procs_per_node", 1)),
            runtime=runtime,
            env=str_map(what, "env", data.get("env")),
            timeout=None if timeout is None else float(timeout),
            cluster=cluster_settings,
        )

    @classmethod
    def from_parameters(
        cls,
        *,
        nodes: int,
        procs_per_node: int,
        runtime: str,
        cpu: str,
        memory: str,
        gpus: int,
        gpu_resource: str,
        image: str,
        namespace: str,
        artifact_store: str,
        artifact_secret: str,
        env: dict[str, Any] | None,
        timeout_s: float,
        step: str | None = None,
    ) -> TrainSettings:
        """The settings of a prebuilt component, from its plain parameters ("" and 0: unset)."""
        if nodes < 1 or procs_per_node < 1:
            raise ValueError(
                f"nodes and procs_per_node must be >= 1 (got {nodes}, {procs_per_node})"
            )
        resources = Resources(
            cpu=cpu or None,
            memory=memory or None,
            accelerator=gpu_resource if gpus else None,
            accelerator_count=int(gpus) if gpus else 0,
        )
        return cls(
            step=step,
            nodes=int(nodes),
            procs_per_node=int(procs_per_node),
            runtime=runtime or DEFAULT_RUNTIME,
            env={str(k): str(v) for k, v in (env or {}).items()},
            timeout=float(timeout_s) if timeout_s else None,
            cluster=ClusterSettings(
                image=image or None,
                namespace=namespace or None,
                artifact_endpoint=artifact_store or None,
                artifact_secret=artifact_secret or None,
                resources=resources,
            ),
        )


@dataclass(frozen=True)
class SweepStepSettings:
    """What a ``@sweep`` launcher carries: the search, and what each of its trials runs.

    Attributes:
        search: The search the sweepers run (``backends.sweeper.base.SweepSettings``).
        step: The step's name (the Experiment's name prefix, the study's name).
        model_param: The trial function's ``Output[Model]`` parameter, if it has one.
        train: The swept ``@train`` step's job, when the trials are that step's runs.
        trial: Env and cluster settings of each trial of a plain ``@sweep`` (one process).
    """

    search: SweepSettings
    step: str
    model_param: str | None = None
    train: TrainSettings | None = None
    trial: TrainSettings = field(default_factory=TrainSettings)

    @classmethod
    def for_prebuilt(
        cls, search: SweepSettings, job: TrainSettings, *, step: str, model_param: str | None
    ) -> SweepStepSettings:
        """The prebuilt ``sweep`` component's settings: its trials run ``job`` (one process or a TrainJob)."""
        return cls(
            search=search,
            step=step,
            model_param=model_param,
            train=job if job.world_size > 1 else None,
            trial=TrainSettings(env=dict(job.env), cluster=job.cluster),
        )

    def job(self) -> TrainSettings:
        """What each trial runs: the swept ``@train`` step's job, or one process."""
        return self.train if self.train is not None else self.trial.single_process()

    def to_json(self) -> dict[str, Any]:
        """The JSON a launcher component carries: the search's keys beside the trials'."""
        return {
            **self.search.to_json(),
            "step": self.step,
            "model_param": self.model_param,
            "train": None if self.train is None else self.train.to_json(),
            "trial": {"env": dict(self.trial.env), "cluster": self.trial.cluster.to_json()},
        }

    @classmethod
    def from_json(cls, data: Any) -> SweepStepSettings:
        """Read what :meth:`to_json` wrote; an unknown key or a mistyped value is an error."""
        what = "sweep settings"
        own = ("step", "model_param", "train", "trial")
        known(what, data, (*SweepSettings.KEYS, *own))
        train, trial = data.get("train"), data.get("trial")
        if trial is not None:
            known(f"{what}: trial", trial, ("env", "cluster"))
        return cls(
            search=SweepSettings.from_json({k: v for k, v in data.items() if k not in own}),
            step=text(what, "step", data.get("step")),
            model_param=opt_str(what, "model_param", data.get("model_param")),
            train=None if train is None else TrainSettings.from_json(train),
            trial=TrainSettings.from_json(trial or {}),
        )
