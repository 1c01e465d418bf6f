"""Sweeper backends: a hyperparameter search as an Optuna study locally or a Katib Experiment.

``base`` holds the small interface (:class:`~.base.SweepSettings` in,
:class:`~.base.SweepResult` out); ``local`` (Optuna) and ``kubernetes`` (Katib)
implement it and are imported only when used.
"""

from __future__ import annotations

from typing import Any


def get_sweeper(kind: str, **options: Any) -> Any:
    """``"local"`` -> :class:`~.local.OptunaSweeper`, ``"kubernetes"`` -> :class:`~.kubernetes.KatibSweeper`."""
    if kind == "local":
        from workbench_dsl.backends.sweeper.local import OptunaSweeper

        return OptunaSweeper(**options)
    if kind == "kubernetes":
        from workbench_dsl.backends.sweeper.kubernetes import KatibSweeper

        return KatibSweeper(**options)
    raise ValueError(f"unknown sweeper backend {kind!r} (known: local, kubernetes)")
