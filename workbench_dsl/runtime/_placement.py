"""Where a launcher runs its work: here (local engine, or no cluster around) or on Kubernetes.

The one place that decides it, for every launcher (``@train``, ``@sweep``,
``@register``'s registry, ``@serve``'s deployer), so a compiled component run
by plain ``kfp.local`` never reaches for a cluster it is not in.
"""

from __future__ import annotations

import os

from workbench_dsl import _env

#: Force a placement: "local" or "kubernetes" (for debugging a compiled component by hand).
FORCE = "WORKBENCH_BACKEND"


def on_cluster() -> bool:
    """True when the launcher should use the cluster (TrainJob, Katib, MLflow server, KServe).

    Under the local engine never. Elsewhere only inside a Kubernetes pod, so a
    compiled component run by plain ``kfp.local`` on a laptop still runs locally.
    """
    forced = os.environ.get(FORCE)
    if forced in ("local", "kubernetes"):
        return forced == "kubernetes"
    if _env.running_locally():
        return False
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
