"""``workbench_dsl.report(step=..., **metrics)``: intermediate metrics of a trial, for early stopping.

Call it from a ``@sweep`` trial (or a ``@train`` step used as one) as training
progresses::

    for epoch in range(1, epochs + 1):
        ...
        report(step=epoch, accuracy=acc)

It prints ``step=3 accuracy=0.91`` (the ``name=value`` lines Katib's stdout
metrics collector reads on a cluster), and locally records the objective's
value in the Optuna study, where the sweep's early-stopping rule reads it. When
the rule says the trial should stop, ``report`` raises ``TrialPruned``; let it
propagate and the trial is recorded as pruned (early-stopped), not failed.
Outside a sweep it only prints. In a distributed job only rank 0 reports.
"""

from __future__ import annotations

import math
import os

from workbench_dsl.backends.sweeper.base import TrialPruned

__all__ = ["TrialPruned", "report"]

_CONTEXT = "WORKBENCH_SWEEP_CONTEXT"


def report(*, step: int, **metrics: float) -> None:
    """Report intermediate metrics of the running trial at ``step`` (counting from 1).

    Raises:
        TrialPruned: early stopping decided this trial should stop.
        TypeError: ``step`` is not a whole number or a metric is not a number.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise TypeError(f"report() step must be a whole number >= 0 (got {step!r})")
    if not metrics:
        raise TypeError("report() needs at least one metric, e.g. report(step=1, accuracy=0.9)")
    values: dict[str, float] = {}
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"report() metric {name!r} must be a number (got {type(value).__name__})"
            ) from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise TypeError(f"report() metric {name!r} must be a finite number (got {value!r})")
        values[name] = number
    if os.environ.get("RANK", "0") != "0":
        return
    print(f"step={step} " + " ".join(f"{k}={v!r}" for k, v in values.items()), flush=True)
    if os.environ.get(_CONTEXT):
        from workbench_dsl.backends.sweeper.local import report_intermediate

        report_intermediate(step, values)
