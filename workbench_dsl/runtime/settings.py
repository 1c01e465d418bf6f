"""The typed settings a ``@train`` launcher (and a swept ``@train``'s trials) carries, written once, read strictly.

``@train`` writes a :class:`TrainSettings` into its compiled component as JSON
(:meth:`TrainSettings.to_json`, whose keys and values are exactly what earlier
components carried, so compiled YAML does not change); the launcher, the Katib
trial template and ``workbench plan`` read it back with
:meth:`TrainSettings.from_json`, which refuses an unknown key or a value of the
wrong type with one line instead of guessing. The prebuilt ``train``/``sweep``
components build the same type from their plain parameters
(:meth:`TrainSettings.from_parameters`). It lives in ``runtime/`` because the
DSL may import the runtime and never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from workbench_dsl.compute import ClusterSettings, Resources

#: The Kubeflow Trainer runtime a TrainJob uses when the step names none.
DEFAULT_RUNTIME = "torch-distributed"


class SettingsError(ValueError):
    """A launcher's baked-in settings are not what this version of workbench-dsl writes."""


def _fail(what: str, key: str, expected: str, value: Any) -> SettingsError:
    return SettingsError(
        f"{what}: {key} must be {expected} (got {value!r}); rebuild the component with the "
        f"workbench-dsl version that runs it"
    )


def _count(what: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(what, key, "a whole number >= 1", value)
    return value


def _opt_str(what: str, key: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(what, key, "a string or null", value)
    return value


def _str_map(what: str, key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(what, key, "an object of strings", value)
    return dict(value)


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
        if not isinstance(data, dict):
            raise _fail(what, "the settings", "an object", data)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingsError(
                f"{what}: unknown field(s) {', '.join(unknown)}; rebuild the component with "
                f"the workbench-dsl version that runs it"
            )
        runtime = data.get("runtime", DEFAULT_RUNTIME)
        if not isinstance(runtime, str) or not runtime:
            raise _fail(what, "runtime", "a Kubeflow Trainer runtime name", runtime)
        timeout = data.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise _fail(what, "timeout", "a number of seconds > 0 or null", timeout)
        cluster = data.get("cluster")
        if cluster is not None and not isinstance(cluster, dict):
            raise _fail(what, "cluster", "an object", cluster)
        try:
            cluster_settings = ClusterSettings.from_json(cluster)
        except (TypeError, ValueError) as e:
            raise SettingsError(f"{what}: cluster: {e}") from None
        return cls(
            step=_opt_str(what, "step", data.get("step")),
            nodes=_count(what, "nodes", data.get("nodes", 1)),
            procs_per_node=_count(what, "procs_per_node", data.get("procs_per_node", 1)),
            runtime=runtime,
            env=_str_map(what, "env", data.get("env")),
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
