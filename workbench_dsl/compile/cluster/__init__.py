"""What the cluster's control planes accept: vendored schemas and ported admission rules.

:func:`check_object` validates one object we would create (InferenceService,
TrainJob, Katib Experiment with its trial template, batch Job) against the
``openAPIV3Schema`` of every supported version and the webhook and controller
rules a schema cannot express. ``workbench plan`` and ``workbench submit`` use
it before anything reaches a cluster; the tests use it over the decorators'
whole option space.
"""

from __future__ import annotations

from typing import Any

from workbench_dsl.compile.cluster import katib, kserve, trainer
from workbench_dsl.compile.cluster.crds import check_object as _check_schema

__all__ = ["check_object", "check_patch"]


def check_object(obj: dict[str, Any]) -> list[str]:
    """Every reason a cluster would refuse ``obj`` (empty when every supported version takes it)."""
    problems = _check_schema(obj)
    kind = obj.get("kind")
    if kind == "InferenceService":
        problems += kserve.check(obj)
    elif kind == "TrainJob":
        problems += trainer.check(obj)
    elif kind == "Experiment":
        problems += katib.check(obj)
        trial = ((obj.get("spec") or {}).get("trialTemplate") or {}).get("trialSpec")
        if isinstance(trial, dict):
            problems += [f"spec.trialTemplate.trialSpec: {p}" for p in _check_trial(trial)]
    return problems


def _check_trial(trial: dict[str, Any]) -> list[str]:
    problems = _check_schema(trial)
    if trial.get("kind") == "TrainJob":
        problems += trainer.check(trial, template=True)
    return problems


def check_patch(current: dict[str, Any], patch: dict[str, Any]) -> list[str]:
    """Every reason a merge ``patch`` of ``current`` would be refused (the result is validated)."""
    return check_object(kserve.merge_patch(current, patch))
