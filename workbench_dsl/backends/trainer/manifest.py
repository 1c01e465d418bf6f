"""The Kubeflow Trainer v2 TrainJob for a :class:`TrainJobSpec`, built with the official models.

Every field comes from ``kubeflow_trainer_api`` models (``TrainerV1alpha1TrainJob``
and friends), serialised with their own ``to_dict()``: the runtime reference,
``numNodes`` and ``numProcPerNode``, resources per node from the compute
profile, the environment (including the invocation the pods run), and a
runtime patch for scheduling (node selector, tolerations) and pod labels.
See https://www.kubeflow.org/docs/components/trainer/overview/
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from workbench_dsl.backends.trainer.base import TrainJobSpec

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
PLURAL = "trainjobs"
KIND = "TrainJob"
#: The replicated job whose pods run the training processes (the runtime's "node").
NODE = "node"
#: Owner of our runtime patches (TrainJob.spec.runtimePatches[].manager).
PATCH_MANAGER = "workbench.dev/workbench-dsl"
STEP_LABEL = "workbench.dev/step"
#: Every create and patch asks the API server to refuse unknown fields, not drop them.
FIELD_VALIDATION = "Strict"
#: The command every node's trainer container runs.
POD_COMMAND = ("python", "-m", "workbench_dsl.runtime._pod")


def resource_name(step: str, seed: str, max_len: int = 40) -> str:
    """A DNS-1035 name from the step's name and a stable seed (``fit-3f2a9c1b``)."""
    base = re.sub(r"[^a-z0-9-]+", "-", step.lower().replace("_", "-")).strip("-") or "step"
    if not base[0].isalpha():
        base = f"s-{base}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:8]
    return f"{base[: max_len - 9].rstrip('-')}-{digest}"


def _env_vars(spec: TrainJobSpec) -> list[Any]:
    from kubeflow_trainer_api import models as m

    env = [m.IoK8sApiCoreV1EnvVar(name=k, value=v) for k, v in sorted(spec.env.items())]
    for s in spec.secret_env:
        env.append(
            m.IoK8sApiCoreV1EnvVar(
                name=s.name,
                valueFrom=m.IoK8sApiCoreV1EnvVarSource(
                    secretKeyRef=m.IoK8sApiCoreV1SecretKeySelector(name=s.secret, key=s.key)
                ),
            )
        )
    return env


def _runtime_patch(spec: TrainJobSpec) -> Any | None:
    from kubeflow_trainer_api import models as m

    labels = {STEP_LABEL: spec.name, **spec.labels}
    pod_spec = None
    if spec.node_selector or spec.tolerations:
        pod_spec = m.TrainerV1alpha1PodSpecPatch(
            nodeSelector=dict(sorted(spec.node_selector.items())) or None,
            tolerations=[
                m.IoK8sApiCoreV1Toleration(
                    key=t.key, operator=t.operator, value=t.value, effect=t.effect
                )
                for t in spec.tolerations
            ]
            or None,
        )
    return m.TrainerV1alpha1RuntimePatch(
        manager=PATCH_MANAGER,
        trainingRuntimeSpec=m.TrainerV1alpha1TrainingRuntimeSpecPatch(
            template=m.TrainerV1alpha1JobSetTemplatePatch(
                spec=m.TrainerV1alpha1JobSetSpecPatch(
                    replicatedJobs=[
                        m.TrainerV1alpha1ReplicatedJobPatch(
                            name=NODE,
                            template=m.TrainerV1alpha1JobTemplatePatch(
                                spec=m.TrainerV1alpha1JobSpecPatch(
                                    template=m.TrainerV1alpha1PodTemplatePatch(
                                        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
                                            labels=dict(sorted(labels.items())),
                                            annotations=dict(sorted(spec.annotations.items()))
                                            or None,
                                        ),
                                        spec=pod_spec,
                                    )
                                )
                            ),
                        )
                    ]
                )
            )
        ),
    )


def trainjob_spec(spec: TrainJobSpec) -> Any:
    """The ``TrainerV1alpha1TrainJobSpec`` model (also a Katib trial's spec)."""
    from kubeflow_trainer_api import models as m

    requests, limits = spec.resources.requests_and_limits()
    resources = None
    if requests or limits:
        q = m.IoK8sApimachineryPkgApiResourceQuantity
        resources = m.IoK8sApiCoreV1ResourceRequirements(
            requests={k: q(v) for k, v in requests.items()} or None,
            limits={k: q(v) for k, v in limits.items()} or None,
        )
    trainer = m.TrainerV1alpha1Trainer(
        image=spec.image,
        command=list(POD_COMMAND),
        env=_env_vars(spec) or None,
        numNodes=spec.nodes,
        numProcPerNode=spec.procs_per_node,
        resourcesPerNode=resources,
    )
    return m.TrainerV1alpha1TrainJobSpec(
        runtimeRef=m.TrainerV1alpha1RuntimeRef(
            name=spec.runtime, kind="ClusterTrainingRuntime", apiGroup=GROUP
        ),
        trainer=trainer,
        runtimePatches=[_runtime_patch(spec)],
        activeDeadlineSeconds=max(1, round(spec.timeout)) if spec.timeout else None,
    )


def pod_owner(reference: Any, owner: dict[str, str] | None) -> list[Any] | None:
    """``ownerReferences`` naming the launcher's pod ``owner`` (``name``, ``uid``), or None.

    Deleting the pod (the KFP run) then deletes what the launcher created, even when
    the launcher was killed before it could. ``reference`` is the SDK's
    ``IoK8sApimachineryPkgApisMetaV1OwnerReference`` model: Trainer's and Katib's SDKs
    each generate their own from the same Kubernetes schema.
    """
    if not owner:
        return None
    return [
        reference(
            apiVersion="v1",
            kind="Pod",
            name=owner["name"],
            uid=owner["uid"],
            blockOwnerDeletion=False,
            controller=False,
        )
    ]


def build_trainjob(
    spec: TrainJobSpec,
    *,
    name: str,
    namespace: str,
    owner: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The TrainJob manifest as the API server receives it (camelCase JSON)."""
    from kubeflow_trainer_api import models as m

    job = m.TrainerV1alpha1TrainJob(
        apiVersion=f"{GROUP}/{VERSION}",
        kind=KIND,
        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={STEP_LABEL: spec.name},
            ownerReferences=pod_owner(m.IoK8sApimachineryPkgApisMetaV1OwnerReference, owner),
        ),
        spec=trainjob_spec(spec),
    )
    result: dict[str, Any] = job.to_dict()
    return result
