"""Trainer backends: one training program as N local processes or as a Kubeflow Trainer TrainJob.

``base`` holds the small interface (:class:`~.base.TrainJobSpec`, the errors);
``local`` and ``kubernetes`` implement it and are imported only when used.
"""

from __future__ import annotations

from typing import Any


def get_trainer(kind: str, **options: Any) -> Any:
    """``"local"`` -> :class:`~.local.LocalTrainer`, ``"kubernetes"`` -> :class:`~.kubernetes.KubernetesTrainer`."""
    if kind == "local":
        from workbench_dsl.backends.trainer.local import LocalTrainer

        return LocalTrainer(**options)
    if kind == "kubernetes":
        from workbench_dsl.backends.trainer.kubernetes import KubernetesTrainer

        return KubernetesTrainer(**options)
    raise ValueError(f"unknown trainer backend {kind!r} (known: local, kubernetes)")
