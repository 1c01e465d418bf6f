"""Lowering of step options and compute profiles onto a KFP task.

Resources become KFP resource settings; node selectors, tolerations, the
timeout and the cost annotation become kfp-kubernetes platform config, which
the local engine also reads (it enforces the timeout and reports the rest as
cluster-only).
"""

from __future__ import annotations

from typing import Any

from workbench_dsl.compute import COST_ANNOTATION, PROFILE_LABEL, Profile
from workbench_dsl.dsl._options import StepOptions

#: Pod annotation carrying the profile's cost, read by cost reports.
#: Pod label naming the compute profile.


def _seconds(value: float) -> str:
    return f"{int(value)}s" if float(value).is_integer() else f"{value}s"


def apply_options(task: Any, options: StepOptions, profile: Profile) -> None:
    """Set resources, scheduling, caching, retries, timeout and env on ``task``."""
    from kfp import kubernetes

    if profile.cpu:
        task.set_cpu_request(profile.cpu)
        task.set_cpu_limit(profile.cpu_limit or profile.cpu)
    elif profile.cpu_limit:
        task.set_cpu_limit(profile.cpu_limit)
    if profile.memory:
        task.set_memory_request(profile.memory)
        task.set_memory_limit(profile.memory_limit or profile.memory)
    elif profile.memory_limit:
        task.set_memory_limit(profile.memory_limit)
    if profile.accelerator and profile.accelerator_count:
        task.set_accelerator_type(profile.accelerator)
        task.set_accelerator_limit(profile.accelerator_count)
    for key, value in sorted(profile.node_selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for t in profile.tolerations:
        kubernetes.add_toleration(
            task, key=t.key, operator=t.operator, value=t.value, effect=t.effect
        )
    kubernetes.add_pod_label(task, PROFILE_LABEL, profile.name)
    kubernetes.add_pod_annotation(task, COST_ANNOTATION, f"{profile.cost_per_hour:g}")

    task.set_caching_options(options.cache)
    if options.retries:
        task.set_retry(
            num_retries=options.retries,
            backoff_duration=_seconds(options.retry_backoff) if options.retry_backoff else None,
        )
    if options.timeout:
        kubernetes.set_timeout(task, max(1, round(options.timeout)))
    for key, value in options.env.items():
        task.set_env_variable(key, value)
