"""The pod an attempt would have: env from secrets and config maps, volumes, its name.

What kfp-kubernetes asks of a task's pod (``platform.py`` reads it), resolved when
the task is prepared or its attempt starts: a name an upstream output or the
task's DAG gives is known by then. A secret's values go only into the attempt
(and into the orchestrator's list of values to mask); the cache key gets digests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_dsl.engine import kube_objects, volumes
from workbench_dsl.engine.graph import Node
from workbench_dsl.engine.platform import ExecutorPlatform

if TYPE_CHECKING:
    from workbench_dsl.engine.orchestrator.loop import Orchestrator

#: Resolves an object's name from its constant name and where else it may come from.
NameOf = Callable[[str | None, tuple[tuple[str, str], ...]], str | None]


def _object_name(node: Node, name: str | None, source: tuple[tuple[str, str], ...]) -> str | None:
    """A secret's, config map's or claim's name: known before the run, or resolved now."""
    src = dict(source)
    if "task" in src:
        producer = node.scope.children.get(src["task"])
        value = None if producer is None else producer.out_params.get(src["key"])
        return None if value in (None, "") else str(value)
    if "input" in src:
        value = node.scope.params.get(src["input"])
        return None if value in (None, "") else str(value)
    return name or None


def object_env(
    o: Orchestrator, node: Node, plat: ExecutorPlatform, *, digests: bool
) -> dict[str, str]:
    """Env vars from secrets and config maps (``digests``: a secret's digest, for cache keys).

    Raises:
        ValueError: a secret, config map or key that is not set here (not optional).
    """
    return env_from_objects(
        o.root.root,
        plat,
        lambda name, source: _object_name(node, name, source),
        o.secret_values,
        digests=digests,
    )


def env_from_objects(
    root: Path, plat: ExecutorPlatform, name_of: NameOf, secrets: list[str], *, digests: bool
) -> dict[str, str]:
    """Env vars from the secrets and config maps under ``root`` (a run's or a replay's).

    ``name_of`` resolves an object's name; each secret value read is added to ``secrets``
    (the values to mask).

    Raises:
        ValueError: a secret, config map or key that is not set here (not optional).
    """
    out: dict[str, str] = {}
    for ref in plat.env_refs:
        name = name_of(ref.name, ref.source)
        data = kube_objects.ObjectStore(root, ref.kind).get(name) if name else None
        if data is None or ref.key not in data:
            if ref.optional:
                continue
            what = "secret" if ref.kind == "secret" else "config map"
            missing = "is not set here" if data is None else f"has no key {ref.key!r} here"
            raise ValueError(
                f"{what} {name!r} {missing}: "
                f"{kube_objects.set_command(ref.kind)} {name} {ref.key}=VALUE"
            )
        value = data[ref.key]
        problem = kube_objects.env_problem(ref.kind, str(name), ref.key, value)
        if problem is not None:  # a name only the run knew (the preflight checks the others)
            raise ValueError(problem)
        if ref.kind == "secret":
            if value not in secrets:
                secrets.append(value)
            if digests:
                value = kube_objects.digest(value)
        out[ref.env] = value
    return out


def mounted_digests(o: Orchestrator, node: Node, plat: ExecutorPlatform) -> dict[str, str]:
    """For the cache key: what the task mounts, as KFP's driver keys it and beyond.

    The name of each PVC, as the driver puts PVC names in its fingerprint
    (kubeflow/pipelines backend/src/v2/driver/cache.go, ``getFingerPrint``): a task on a
    per-run volume is a miss in every run. A digest of each secret or config map mounted
    as files: a changed object is a miss, as for env vars, without any value in the key.
    Entries are named ``<kind> at <path>``, never an env var's name.
    """
    out: dict[str, str] = {}
    for ref in plat.mounts:
        if ref.kind == "pvc":
            out[f"pvc at {ref.path}"] = _object_name(node, ref.name, ref.source) or ""
            continue
        if ref.kind not in ("secret", "configmap"):
            continue
        name = _object_name(node, ref.name, ref.source)
        data = kube_objects.ObjectStore(o.root.root, ref.kind).get(name) if name else None
        text = "" if data is None else json.dumps(data, sort_keys=True)
        out[f"{ref.kind} at {ref.path}"] = kube_objects.digest(text)
    return out


def volume_mounts(
    o: Orchestrator, node: Node, plat: ExecutorPlatform, ephemeral: Path
) -> list[dict[str, Any]]:
    """The task's volumes, resolved now (a PVC's name may be an upstream task's output).

    ``ephemeral``: the attempt's folder for generic ephemeral volumes.

    Raises:
        ValueError: a volume that cannot be had (its name is unknown, or the object is unset).
    """
    return mounts_for(
        o.root.root,
        plat,
        lambda name, source: _object_name(node, name, source),
        o.secret_values,
        ephemeral,
    )


def mounts_for(
    root: Path, plat: ExecutorPlatform, name_of: NameOf, secrets: list[str], ephemeral: Path
) -> list[dict[str, Any]]:
    """The volumes of a task under ``root`` (a run's or a replay's), as ``mounts.enter`` takes.

    Raises:
        ValueError: a volume that cannot be had (its name is unknown, or the object is unset).
    """
    out: list[dict[str, Any]] = []
    for i, ref in enumerate(plat.mounts):
        name = name_of(ref.name, ref.source)
        if ref.kind == "emptydir":
            out.append({"path": ref.path, "files": {}})
            continue
        if ref.kind == "ephemeral":  # a PVC made for the pod: on disk, not in memory
            folder = ephemeral / str(i)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            out.append({"path": ref.path, "source": str(folder)})
            continue
        if not name:
            if ref.optional:
                continue
            raise ValueError(f"the name of the {ref.kind} mounted at {ref.path} is not known")
        if ref.kind == "pvc":
            folder = volumes.volume_dir(root, str(name), create=True)
            if ref.sub_path:  # the kubelet makes a missing sub path (checked by the preflight)
                base, folder = folder.resolve(), folder / ref.sub_path
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not folder.resolve().is_relative_to(base):  # a link a task left there
                    raise ValueError(
                        f"sub_path {ref.sub_path!r} of volume {name!r} leads out of the volume"
                    )
            out.append({"path": ref.path, "source": str(folder)})
            continue
        data = kube_objects.ObjectStore(root, ref.kind).get(str(name))
        if data is None:
            if ref.optional:  # as the kubelet does: an empty volume
                out.append({"path": ref.path, "files": {}, "readonly": True})
                continue
            what = "secret" if ref.kind == "secret" else "config map"
            raise ValueError(
                f"{what} {name!r} is not set here: {kube_objects.set_command(ref.kind)} {name} "
                f"KEY=VALUE"
            )
        if ref.kind == "secret":
            secrets.extend(v for v in data.values() if v not in secrets)
        out.append({"path": ref.path, "files": data, "readonly": True})
    return out


def pod_name(o: Orchestrator, node: Node, attempt: int) -> str:
    """The attempt's pod name (``metadata.name``): stable for the attempt, like a cluster's."""
    return pod_name_of(o.spec.name, o.run_id, node.qname, attempt)


def pod_name_of(pipeline: str, run_id: str, qname: str, attempt: int | str) -> str:
    """A pod name for ``qname``'s ``attempt`` (``replay`` for a replay)."""
    raw = f"{pipeline}-{run_id}-{qname}-{attempt}".lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    if len(name) > 63 or not raw.isascii():  # names apart only by other letters stay apart
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name
