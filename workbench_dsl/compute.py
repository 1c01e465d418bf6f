"""Compute, one type per concept: a profile, the resources of one node or pod, a toleration, cluster settings.

The decorators write these (from ``workbench.toml``'s profiles and
``[cluster]``) into a launcher component as JSON; the launchers read them back
with :meth:`ClusterSettings.from_json`, which refuses anything it does not know;
the backends build their Kubernetes objects from the same types. Nothing on the
way re-checks or rebuilds an untyped dict.
See https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

#: Labels and annotations every work pod of a step carries.
PROFILE_LABEL = "workbench.dev/profile"
COST_ANNOTATION = "workbench.dev/cost-per-hour"


@dataclass(frozen=True)
class Toleration:
    """A pod toleration (``operator`` Equal or Exists; ``effect`` None for all)."""

    key: str
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None

    def to_json(self) -> dict[str, str]:
        """The toleration as Kubernetes spells it, unset fields left out."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Toleration:
        _known(cls, data, "toleration")
        return cls(**data)


@dataclass(frozen=True)
class Resources:
    """Compute for one node or pod (Kubernetes quantities, as in a compute profile)."""

    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    accelerator: str | None = None
    accelerator_count: int = 0

    def requests_and_limits(self) -> tuple[dict[str, str], dict[str, str]]:
        """Requests and limits: a limit defaults to its request; accelerators go in both."""
        requests: dict[str, str] = {}
        limits: dict[str, str] = {}
        if self.cpu:
            requests["cpu"] = self.cpu
            limits["cpu"] = self.cpu_limit or self.cpu
        elif self.cpu_limit:
            limits["cpu"] = self.cpu_limit
        if self.memory:
            requests["memory"] = self.memory
            limits["memory"] = self.memory_limit or self.memory
        elif self.memory_limit:
            limits["memory"] = self.memory_limit
        if self.accelerator and self.accelerator_count:
            limits[self.accelerator] = str(self.accelerator_count)
            requests[self.accelerator] = str(self.accelerator_count)
        return requests, limits

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resources:
        _known(cls, data, "resources")
        return cls(**data)


@dataclass(frozen=True)
class Profile:
    """Compute a step runs on, named in ``workbench.toml``."""

    name: str
    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    accelerator: str | None = None
    accelerator_count: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    cost_per_hour: float = 0.0
    description: str = ""

    @property
    def resources(self) -> Resources:
        """What one node or pod of this profile asks for."""
        return Resources(
            cpu=self.cpu,
            memory=self.memory,
            cpu_limit=self.cpu_limit,
            memory_limit=self.memory_limit,
            accelerator=self.accelerator,
            accelerator_count=self.accelerator_count,
        )


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how a launcher's work pods run on a cluster (a TrainJob's nodes, trial pods).

    Attributes:
        image: The image the work pods run (the runtime image).
        packages: Packages installed on top of it before the step's code runs.
        namespace: Where the launcher creates its objects (None: its own pod's).
        artifact_endpoint: The object store's endpoint the pods read and write.
        artifact_secret: The Secret with its ``accesskey``/``secretkey``.
        resources: Compute per node or pod.
        node_selector: Node labels the pods must land on.
        tolerations: Taints they tolerate.
        labels: Pod labels (the profile's name).
        annotations: Pod annotations (the profile's cost per hour).
    """

    image: str | None = None
    packages: tuple[str, ...] = ()
    namespace: str | None = None
    artifact_endpoint: str | None = None
    artifact_secret: str | None = None
    resources: Resources = field(default_factory=Resources)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_profile(cls, profile: Profile, **where: Any) -> ClusterSettings:
        """The settings of ``profile``'s compute, with ``where`` (image, namespace, ...)."""
        return cls(
            resources=profile.resources,
            node_selector=dict(sorted(profile.node_selector.items())),
            tolerations=tuple(profile.tolerations),
            labels={PROFILE_LABEL: profile.name},
            annotations={COST_ANNOTATION: f"{profile.cost_per_hour:g}"},
            **where,
        )

    @property
    def cost_per_hour(self) -> float:
        """The profile's cost per hour of one node or pod (0 when not set)."""
        try:
            return float(self.annotations.get(COST_ANNOTATION) or 0.0)
        except ValueError:
            return 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON a launcher component carries (stable keys, unset values as null)."""
        return {
            "image": self.image,
            "packages": list(self.packages),
            "namespace": self.namespace,
            "artifact_endpoint": self.artifact_endpoint,
            "artifact_secret": self.artifact_secret,
            "resources": self.resources.to_json(),
            "node_selector": dict(self.node_selector),
            "tolerations": [t.to_json() for t in self.tolerations],
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ClusterSettings:
        """Read what :meth:`to_json` wrote; an unknown key is an error, not ignored."""
        data = dict(data or {})
        _known(cls, data, "cluster settings")
        return cls(
            image=data.get("image"),
            packages=tuple(data.get("packages") or ()),
            namespace=data.get("namespace"),
            artifact_endpoint=data.get("artifact_endpoint"),
            artifact_secret=data.get("artifact_secret"),
            resources=Resources.from_json(data.get("resources") or {}),
            node_selector=dict(data.get("node_selector") or {}),
            tolerations=tuple(Toleration.from_json(t) for t in data.get("tolerations") or ()),
            labels=dict(data.get("labels") or {}),
            annotations=dict(data.get("annotations") or {}),
        )


def _known(cls: type, data: dict[str, Any], what: str) -> None:
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(
            f"{what}: unknown field(s) {', '.join(unknown)}; was the component built by a "
            f"different workbench-dsl version than the one running it?"
        )
