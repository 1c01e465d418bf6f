"""Kubeflow Trainer's TrainJob rules that the structural schema does not check, ported as code.

Sources, kubeflow/trainer at v2.2.0 and v2.3.0:

* the CEL rules (``x-kubernetes-validations``) of
  ``manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml``: the name is an
  RFC 1035 label of at most 63 characters, ``managedBy`` is one of two values,
  initializer storage URIs have a scheme;
* ``pkg/runtime/framework/plugins/torch/torch.go`` (``Validate``): the trainer's
  env must not set torchrun's reserved names (``pkg/constants/constants.go``
  ``TorchRunReservedEnvNames``);
* ``pkg/runtime/framework/plugins/jobset/jobset.go``: a runtime patch names a
  replicated job of the runtime (``node`` in the torch runtimes).
"""

from __future__ import annotations

import re
from typing import Any

from workbench_dsl.backends.trainer.base import TORCHRUN_ENV

_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://.+$")
_MANAGED_BY = ("trainer.kubeflow.org/trainjob-controller", "kueue.x-k8s.io/multikueue")
TORCHRUN_RESERVED = TORCHRUN_ENV
#: The replicated jobs of the torch-distributed ClusterTrainingRuntimes
#: (manifests/base/runtimes/torch_distributed.yaml): one, named ``node``.
TORCH_REPLICATED_JOBS = ("node",)


def check(job: dict[str, Any], *, template: bool = False) -> list[str]:
    """What Trainer's CEL rules or webhook would refuse in ``job`` (a Katib trial spec: ``template``)."""
    out: list[str] = []
    name = str((job.get("metadata") or {}).get("name") or "")
    if not template:
        if not _LABEL.match(name):
            out.append("metadata.name must match RFC 1035 DNS label format")
        if len(name) > 63:
            out.append("metadata.name must be no more than 63 characters")
    spec = job.get("spec") or {}
    managed = spec.get("managedBy")
    if managed is not None and managed not in _MANAGED_BY:
        out.append(f"spec.managedBy: must be one of {', '.join(_MANAGED_BY)} if set")
    for kind in ("dataset", "model"):
        uri = ((spec.get("initializer") or {}).get(kind) or {}).get("storageUri")
        if uri and not _URI.match(uri):
            out.append(f"spec.initializer.{kind}.storageUri: must be a valid URI (scheme://...)")
    runtime = str((spec.get("runtimeRef") or {}).get("name") or "")
    trainer = spec.get("trainer") or {}
    if runtime.startswith("torch"):
        reserved = sorted(
            e.get("name") for e in trainer.get("env") or [] if e.get("name") in TORCHRUN_RESERVED
        )
        if reserved:
            out.append(f"spec.trainer.env: must not have reserved envs {reserved}")
        for patch in spec.get("runtimePatches") or []:
            rjobs = (
                ((patch.get("trainingRuntimeSpec") or {}).get("template") or {}).get("spec") or {}
            ).get("replicatedJobs") or []
            for rj in rjobs:
                if rj.get("name") not in TORCH_REPLICATED_JOBS:
                    out.append(
                        f"spec.runtimePatches: replicated job {rj.get('name')!r} is not in the "
                        f"{runtime} runtime ({', '.join(TORCH_REPLICATED_JOBS)})"
                    )
    nodes = trainer.get("numNodes")
    if isinstance(nodes, int) and nodes < 1:
        out.append("spec.trainer.numNodes: must be 1 or more")
    return out
