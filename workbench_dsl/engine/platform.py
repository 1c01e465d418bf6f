"""The kfp-kubernetes platform document, read for a local run.

Each setting falls in one of three groups:

* **honored**: ``activeDeadlineSeconds`` (the attempt's timeout), ``fieldPathAsEnv``
  (labels and annotations the task reads from its own pod metadata are set
  from ``podMetadata``; the pod's name, namespace, node and IP get local
  stand-ins), the workspace (``pipelineConfig.workspace``: a directory per
  run), and the DSL's ``workbench.dev/cost-per-hour`` annotation (task cost);
* **ignored, said once per run**: scheduling and pod cosmetics -- node
  selectors and affinity, tolerations, image pull secrets and policy, extra
  labels and annotations, shared memory, resource requests and limits;
* **local stand-ins**: secrets and config maps read as environment variables
  (``EnvRef``; their values come from ``kube_objects.py`` when an attempt
  starts, and ``preflight.py`` checks they exist before the run); volumes
  (``MountRef``: PVCs, secrets and config maps as files, emptyDirs, generic
  ephemeral volumes), mounted
  at their paths in the attempt's own mount namespace (``mounts.py``);
* nothing is refused here any more: what is missing is found by ``preflight.py``. Running without them would give a wrong
  result rather than an error, so the run does not start.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.engine.spec import PipelineSpec, component_ref, is_dag

PROFILE_LABEL = "workbench.dev/profile"
COST_ANNOTATION = "workbench.dev/cost-per-hour"

_IGNORED = {
    "nodeSelector": "node selectors",
    "nodeAffinity": "node affinity",
    "tolerations": "tolerations",
    "imagePullSecret": "image pull secrets",
    "imagePullPolicy": "image pull policy",
    "enabledSharedMemory": "shared memory size",
    "securityContext": "security context",
}
_MOUNT_KINDS = {
    "pvcMount": ("pvc", "pvcName"),
    "secretAsVolume": ("secret", "secretName"),
    "configMapAsVolume": ("configmap", "configMapName"),
    "emptyDirMounts": ("emptydir", ""),
    "genericEphemeralVolume": ("ephemeral", ""),
}
_ENV_KINDS = {
    "secretAsEnv": ("secret", "secretKey"),
    "configMapAsEnv": ("configmap", "configMapKey"),
}


@dataclass(frozen=True)
class EnvRef:
    """One environment variable a task reads from a secret or config map.

    ``name`` is empty when only the run knows it: then ``source`` says where it
    comes from (as for :class:`MountRef`), resolved when the attempt starts.
    """

    kind: str  # "secret" or "configmap"
    name: str
    key: str
    env: str
    optional: bool = False
    source: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MountRef:
    """A volume a task mounts: a PVC, a secret or config map as files, or an emptyDir.

    ``name`` is the object's name when known before the run; else ``source`` says
    where it comes from (``taskOutputParameter`` / ``componentInputParameter`` of
    the task's own DAG), resolved when the attempt starts.
    """

    kind: str  # pvc | secret | configmap | emptydir | ephemeral
    path: str
    name: str | None = None
    source: tuple[tuple[str, str], ...] = ()
    optional: bool = False
    sub_path: str = ""  # a PVC's folder to mount instead of its root (``mount_pvc(sub_path=)``)


@dataclass
class ExecutorPlatform:
    """What the platform document means for one executor locally."""

    timeout: float | None = None
    cost_per_hour: float = 0.0
    field_env: dict[str, str] = field(default_factory=dict)  # env var -> fieldPath
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    env_refs: list[EnvRef] = field(default_factory=list)
    mounts: list[MountRef] = field(default_factory=list)

    def env_for(self, pod_name: str) -> dict[str, str]:
        """The environment ``fieldPathAsEnv`` gives the task."""
        return {k: _field_value(p, self, pod_name) for k, p in self.field_env.items()}


@dataclass
class PlatformPlan:
    executors: dict[str, ExecutorPlatform] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def for_executor(self, label: str) -> ExecutorPlatform:
        return self.executors.get(label) or ExecutorPlatform()


def _field_value(path: str, ex: ExecutorPlatform, pod_name: str) -> str:
    p = path.replace('"', "'").strip()
    for prefix, table in (
        ("metadata.labels['", ex.labels),
        ("metadata.annotations['", ex.annotations),
    ):
        if p.startswith(prefix) and p.endswith("']"):
            return table.get(p[len(prefix) : -2], "")
    return {
        "metadata.name": pod_name,
        "metadata.namespace": "local",
        "metadata.uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod:{pod_name}")),  # a UUID
        "spec.nodeName": socket.gethostname(),
        "spec.serviceAccountName": "default",
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
    }.get(p, "")


# What the API server accepts in an env var's fieldRef (the downward API), else it
# refuses the pod (kubernetes pkg/apis/core/validation: validEnvDownwardAPIFieldPathExpressions).
_FIELD_PATHS = {
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
}


def _field_path_ok(path: str) -> bool:
    p = path.replace('"', "'").strip()
    if p.startswith(("metadata.labels['", "metadata.annotations['")) and p.endswith("']"):
        return True
    return p in _FIELD_PATHS


def _tasks_by_executor(spec: PipelineSpec) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    dags = [spec.root.get("dag") or {}]
    dags += [c["dag"] for c in spec.components.values() if is_dag(c)]
    for dag in dags:
        for name, task in (dag.get("tasks") or {}).items():
            comp = spec.components.get(component_ref(task)) or {}
            label = comp.get("executorLabel")
            if label:
                out.setdefault(label, []).append(name)
    return out


def _name_of(entry: dict[str, Any], key: str, params: dict[str, Any]) -> str | None:
    """The secret/config map/PVC name of an entry, when it can be known before the run."""
    if entry.get(key):
        return str(entry[key])
    p = entry.get(f"{key}Parameter") or {}
    if "runtimeValue" in p:
        v = (p["runtimeValue"] or {}).get("constant")
        return None if v in (None, "") else str(v)
    if "componentInputParameter" in p:
        v = params.get(p["componentInputParameter"])
        return None if v in (None, "") else str(v)
    if "taskOutputParameter" in p:
        producer = p["taskOutputParameter"].get("producerTask", "?")
        return f"<output of {producer}>"
    return None


def plan(spec: PipelineSpec, params: dict[str, Any]) -> PlatformPlan:
    """Read the platform document (and resource requests) for a local run."""
    result = PlatformPlan()
    tasks = _tasks_by_executor(spec)
    ignored: dict[str, set[str]] = {}
    execs = (spec.platform.get("deploymentSpec") or {}).get("executors") or {}
    for label, cfg in execs.items():
        who = ", ".join(sorted(set(tasks.get(label, [label]))))
        ex = ExecutorPlatform()
        meta = cfg.get("podMetadata") or {}
        ex.labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        ex.annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        try:
            ex.cost_per_hour = float(ex.annotations.get(COST_ANNOTATION, 0) or 0)
        except ValueError:
            ex.cost_per_hour = 0.0
        for item in cfg.get("fieldPathAsEnv") or []:
            if item.get("name") and item.get("fieldPath"):
                ex.field_env[str(item["name"])] = str(item["fieldPath"])
        if cfg.get("activeDeadlineSeconds") not in (None, "", 0, "0"):
            ex.timeout = float(cfg["activeDeadlineSeconds"])
        read = {p for p in ex.field_env.values()}
        extra = [
            k for k in ex.labels if k != PROFILE_LABEL and f"metadata.labels['{k}']" not in read
        ] + [
            k
            for k in ex.annotations
            if k != COST_ANNOTATION and f"metadata.annotations['{k}']" not in read
        ]
        if extra:
            ignored.setdefault("pod labels and annotations", set()).add(who)
        for key, entries in cfg.items():
            if key in ("podMetadata", "fieldPathAsEnv", "activeDeadlineSeconds"):
                continue
            if key in _ENV_KINDS:
                _env_refs(key, entries, params, ex)
            elif key in _MOUNT_KINDS:
                _mount_refs(key, entries, params, ex)
            elif key in _IGNORED:
                if _has_value(entries, params):
                    ignored.setdefault(_IGNORED[key], set()).add(who)
            else:
                ignored.setdefault(f"'{key}'", set()).add(who)
        result.refusals += [
            f"task {who}: sub_path {m.sub_path!r} of the volume mounted at {m.path} "
            f"must be a relative path without '..' (Kubernetes refuses it)"
            for m in ex.mounts
            if m.sub_path and (m.sub_path.startswith("/") or ".." in m.sub_path.split("/"))
        ]
        paths = [m.path.rstrip("/") or "/" for m in ex.mounts]
        result.refusals += [
            f"task {who}: two volumes are mounted at {p} (Kubernetes refuses such a pod): "
            f"mount one of them elsewhere"
            for p in sorted({p for p in paths if paths.count(p) > 1})
        ]
        result.refusals += [
            f"task {who}: field path {p!r} (env {env}) is not one a pod can read "
            f"(Kubernetes refuses it): use metadata.name, metadata.namespace, metadata.uid, "
            f"metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, "
            f"spec.serviceAccountName, status.hostIP or status.podIP"
            for env, p in sorted(ex.field_env.items())
            if not _field_path_ok(p)
        ]
        result.executors[label] = ex
    _resources(spec, execs, tasks, ignored)
    for what, whos in sorted(ignored.items()):
        result.notices.append(
            f"ignored locally: Kubernetes {what} (tasks: {', '.join(sorted(whos))})"
        )
    pc = spec.platform.get("pipelineConfig") or {}
    for key in pc:
        if key != "workspace":
            result.notices.append(f"ignored locally: pipelineConfig.{key}")
    return result


def _has_value(entries: Any, params: dict[str, Any]) -> bool:
    """False for settings whose only value is an unset optional parameter."""
    items = entries if isinstance(entries, list) else [entries]
    for e in items:
        if not isinstance(e, dict):
            return True
        refs = [v for v in e.values() if isinstance(v, dict) and "componentInputParameter" in v]
        if refs and all(
            params.get(r["componentInputParameter"]) in (None, "", [], {}) for r in refs
        ):
            continue
        secret_ref = e.get("secretNameParameter")
        if (
            isinstance(secret_ref, dict)
            and "componentInputParameter" in secret_ref
            and params.get(secret_ref["componentInputParameter"]) in (None, "")
        ):
            continue
        return True
    return False


def _env_refs(key: str, entries: Any, params: dict[str, Any], ex: ExecutorPlatform) -> None:
    kind, key_field = _ENV_KINDS[key]
    name_key = "secretName" if kind == "secret" else "configMapName"
    for e in entries if isinstance(entries, list) else [entries]:
        if not isinstance(e, dict):
            continue
        name, source = _name_and_source(e, name_key, params)
        if not name and not source:
            continue  # an optional one whose name is an unset parameter
        for item in e.get("keyToEnv") or []:
            if item.get(key_field) and item.get("envVar"):
                ex.env_refs.append(
                    EnvRef(
                        kind,
                        name or "",
                        str(item[key_field]),
                        str(item["envVar"]),
                        bool(e.get("optional")),
                        source,
                    )
                )


def _name_and_source(
    e: dict[str, Any], name_key: str, params: dict[str, Any]
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """An object's name if known now, else where the run will find it."""
    ref = e.get(f"{name_key}Parameter") or {}
    if "taskOutputParameter" in ref:
        t = ref["taskOutputParameter"]
        return None, (
            ("task", str(t.get("producerTask", ""))),
            ("key", str(t.get("outputParameterKey", ""))),
        )
    if "componentInputParameter" in ref:
        # An input of the task's own DAG: a sub-pipeline's input may share a pipeline
        # parameter's name and hold another value, so it is resolved in that DAG
        # (the preflight: dag_inputs.py; the run: when the attempt starts).
        return None, (("input", str(ref["componentInputParameter"])),)
    return _name_of(e, name_key, params), ()


def _mount_refs(key: str, entries: Any, params: dict[str, Any], ex: ExecutorPlatform) -> None:
    kind, name_key = _MOUNT_KINDS[key]
    for e in entries if isinstance(entries, list) else [entries]:
        if not isinstance(e, dict) or not e.get("mountPath"):
            continue
        source: tuple[tuple[str, str], ...] = ()
        name = None
        if name_key:
            # Files compiled by kfp-kubernetes before pvcNameParameter hold only the
            # deprecated oneof: taskOutputParameter, constant, componentInputParameter.
            ref = e.get(f"{name_key}Parameter") or _legacy_ref(e)
            if "taskOutputParameter" in ref:
                t = ref["taskOutputParameter"]
                source = (
                    ("task", str(t.get("producerTask", ""))),
                    ("key", str(t.get("outputParameterKey", ""))),
                )
            elif "componentInputParameter" in ref:
                source = (("input", str(ref["componentInputParameter"])),)
            else:
                name = _name_of(e, name_key, params) or (
                    str(e["constant"]) if e.get("constant") else None
                )
                if name is None and kind == "pvc":
                    continue
        ex.mounts.append(
            MountRef(
                kind,
                str(e["mountPath"]),
                name,
                source,
                bool(e.get("optional")),
                str(e.get("subPath") or ""),
            )
        )


def _legacy_ref(e: dict[str, Any]) -> dict[str, Any]:
    if isinstance(e.get("taskOutputParameter"), dict):
        return {"taskOutputParameter": e["taskOutputParameter"]}
    if isinstance(e.get("componentInputParameter"), str):
        return {"componentInputParameter": e["componentInputParameter"]}
    return {}


def _resources(
    spec: PipelineSpec,
    platform_execs: dict[str, Any],
    tasks: dict[str, list[str]],
    ignored: dict[str, set[str]],
) -> None:
    for label, ex in spec.executors.items():
        res = (ex.get("container") or {}).get("resources") or {}
        if not res:
            continue
        labels = ((platform_execs.get(label) or {}).get("podMetadata") or {}).get("labels") or {}
        who = ", ".join(sorted(set(tasks.get(label, [label]))))
        # The DSL writes every step's compute profile as resources; that is no news.
        if (
            PROFILE_LABEL in labels
            and not res.get("accelerator")
            and not res.get("resourceAcceleratorType")
        ):
            continue
        ignored.setdefault("resource requests and limits (cpu, memory, accelerators)", set()).add(
            who
        )
