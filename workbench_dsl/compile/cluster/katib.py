"""Katib's Experiment rules that a schema cannot say, ported from its webhook and suggestion services.

Sources, kubeflow/katib at v0.19.0:

* ``pkg/apis/controller/experiments/v1beta1/experiment_defaults.go`` (the
  mutating webhook: success/failure conditions of Job and TrainJob trials);
* ``pkg/webhook/v1beta1/experiment/validator/validator.go`` (``ValidateExperiment``:
  name, counts, objective, algorithm, parameters, trial template, collector);
* ``manifests/v1beta1/installs/katib-standalone/katib-config.yaml`` (the
  algorithms, early-stopping rules and trial resources a standalone install has);
* the suggestion services' ``ValidateAlgorithmSettings``:
  ``pkg/suggestion/v1beta1/hyperopt/service.py`` (random, tpe),
  ``optuna/service.py`` (multivariate-tpe, grid), ``goptuna/service.go`` and
  ``converter.go`` (cmaes, sobol), ``skopt/service.py`` (bayesianoptimization);
* ``pkg/metricscollector/v1beta1/common/const.go`` (the stdout collector's filter).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?")
#: katib-config.yaml (standalone): algorithm -> suggestion service.
SUGGESTIONS = {
    "random": "hyperopt",
    "tpe": "hyperopt",
    "grid": "optuna",
    "multivariate-tpe": "optuna",
    "hyperband": "hyperband",
    "bayesianoptimization": "skopt",
    "cmaes": "goptuna",
    "sobol": "goptuna",
    "enas": "enas",
    "darts": "darts",
    "pbt": "pbt",
}
EARLY_STOPPING = ("medianstop",)
#: katib-config.yaml ``trialResources`` of the standalone install (Kind.version.group).
TRIAL_RESOURCES = (
    ("TrainJob", "trainer.kubeflow.org/v1alpha1"),
    ("Job", "batch/v1"),
    ("TFJob", "kubeflow.org/v1"),
    ("PyTorchJob", "kubeflow.org/v1"),
    ("MPIJob", "kubeflow.org/v1"),
    ("XGBoostJob", "kubeflow.org/v1"),
)
#: The settings each suggestion service accepts per algorithm.
_SETTINGS = {
    "random": ("random_state",),
    "tpe": ("gamma", "prior_weight", "n_EI_candidates", "random_state"),
    "multivariate-tpe": ("n_startup_trials", "n_ei_candidates", "random_state"),
    "grid": ("random_state",),
    "cmaes": ("random_state", "sigma", "restart_strategy"),
    "sobol": ("random_state",),
    "bayesianoptimization": (
        "base_estimator",
        "n_initial_points",
        "acq_func",
        "acq_optimizer",
        "random_state",
    ),
}
_PARAM_TYPES = ("int", "double", "categorical", "discrete", "")
_DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal", "")
_COLLECTOR_METRIC = re.compile(r"^[A-Za-z0-9_|-]+$")
_PARAM_REF = re.compile(r"\$\{trialParameters\..+?\}")
_META_REF = re.compile(r"\$\{trialSpec\.(.+?)\}")
_META_KEYS = ("Name", "Namespace", "Kind", "APIVersion", "Annotations", "Labels")


def check(experiment: dict[str, Any]) -> list[str]:
    """What Katib's webhook, controller or suggestion service would refuse in ``experiment``."""
    problems: list[str] = []
    name = str((experiment.get("metadata") or {}).get("name") or "")
    if not _NAME.match(name) or len(name) > 40:
        problems.append(
            f"metadata.name: {name!r} must be lower case alphanumeric or '-', start with a "
            f"letter and be at most 40 characters"
        )
    spec = experiment.get("spec") or {}
    problems += _counts(spec)
    problems += _objective(spec.get("objective"))
    problems += _algorithm(spec)
    problems += _early_stopping(spec.get("earlyStopping"))
    if spec.get("resumePolicy", "") not in ("", "Never", "LongRunning", "FromVolume"):
        problems.append(f"spec.resumePolicy: {spec['resumePolicy']!r} is not a ResumePolicyType")
    params = spec.get("parameters") or []
    if not params:
        problems.append("spec: spec.parameters or spec.nasConfig must be specified")
    problems += _parameters(params)
    problems += _trial_template(spec, params)
    problems += _collector(spec)
    return problems


def _counts(spec: dict[str, Any]) -> list[str]:
    out = []
    most = _int(spec.get("maxTrialCount"))
    parallel = _int(spec.get("parallelTrialCount"))
    parallel = 3 if parallel is None else parallel  # setDefaultParallelTrialCount
    failed = _int(spec.get("maxFailedTrialCount"))
    if failed is not None and failed < 0:
        out.append("spec.maxFailedTrialCount: should not be less than 0")
    if most is not None and most <= 0:
        out.append("spec.maxTrialCount: must be greater than 0")
    if parallel <= 0:
        out.append("spec.parallelTrialCount: must be greater than 0")
    if failed is not None and most is not None and failed > most:
        out.append(
            f"spec.maxFailedTrialCount: {failed} should be less than or equal to "
            f"spec.maxTrialCount ({most})"
        )
    if most is not None and parallel > most:
        out.append(
            f"spec.parallelTrialCount: {parallel} should be less than or equal to "
            f"spec.maxTrialCount ({most})"
        )
    return out


def _int(value: Any) -> int | None:
    # Wrong types are the schema's to report; these rules read whole numbers only.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _objective(obj: dict[str, Any] | None) -> list[str]:
    if not obj:
        return ["spec.objective: must be specified"]
    out = []
    if obj.get("type") not in ("minimize", "maximize"):
        out.append(f"spec.objective.type: {obj.get('type')!r} must be minimize or maximize")
    name = obj.get("objectiveMetricName")
    extra = obj.get("additionalMetricNames") or []
    if not name:
        out.append("spec.objective.objectiveMetricName: must be specified")
    if name in extra:
        out.append(
            "spec.objective.additionalMetricNames: should not contain "
            "spec.objective.objectiveMetricName"
        )
    for metric in [name, *extra]:
        if metric and not _COLLECTOR_METRIC.match(metric):
            out.append(
                f"spec.objective: metric {metric!r} is never collected: the StdOut collector's "
                f"filter reads names matching [\\w|-]+"
            )
    return out


def _early_stopping(es: dict[str, Any] | None) -> list[str]:
    # pkg/earlystopping/v1beta1/medianstop/service.py validate_medianstop_setting
    if not es:
        return []
    if es.get("algorithmName") not in EARLY_STOPPING:
        return [
            f"spec.earlyStopping.algorithmName: {es.get('algorithmName')!r} has no "
            f"early-stopping service (katib-config: {', '.join(EARLY_STOPPING)})"
        ]
    lowest = {"min_trials_required": 1, "start_step": 1}
    out = []
    for s in es.get("algorithmSettings") or []:
        name = s.get("name")
        if name not in lowest:
            out.append(f"spec.earlyStopping: unknown setting {name!r} for algorithm medianstop")
            continue
        try:
            ok = int(s.get("value")) >= lowest[name]
        except (TypeError, ValueError):
            ok = False
        if not ok:
            out.append(f"spec.earlyStopping: {name} must be a whole number >= {lowest[name]}")
    return out


def _algorithm(spec: dict[str, Any]) -> list[str]:
    algo = spec.get("algorithm") or {}
    name = algo.get("algorithmName")
    if name not in SUGGESTIONS:
        return [f"spec.algorithm.algorithmName: {name!r} has no suggestion service in katib-config"]
    out = []
    allowed = _SETTINGS.get(name, ())
    for s in algo.get("algorithmSettings") or []:
        if s.get("name") not in allowed:
            out.append(
                f"spec.algorithm.algorithmSettings: unknown setting {s.get('name')!r} for "
                f"algorithm {name} ({SUGGESTIONS[name]} service)"
            )
        elif s.get("name") == "random_state":
            try:
                if int(s.get("value")) < 0:
                    raise ValueError
            except (TypeError, ValueError):
                out.append("spec.algorithm.algorithmSettings: random_state must be an integer >= 0")
    params = spec.get("parameters") or []
    numeric = [p for p in params if p.get("parameterType") in ("int", "double")]
    if name == "cmaes" and len(numeric) < 2:
        out.append("cmaes: CMA-ES only supports two or more dimensional continuous search space")
    if name in ("cmaes", "sobol"):
        for p in numeric:
            if (p.get("feasibleSpace") or {}).get("distribution") not in (None, "", "uniform"):
                out.append(
                    f"{name}: parameter {p.get('name')!r} asks for a "
                    f"{p['feasibleSpace']['distribution']} distribution, which goptuna ignores"
                )
    if name == "bayesianoptimization":
        for p in numeric:
            space = p.get("feasibleSpace") or {}
            if p["parameterType"] == "double" and space.get("distribution") != "logUniform":
                out.append(
                    f"bayesianoptimization: parameter {p.get('name')!r} would be sampled "
                    f"log-uniformly (skopt Real(..., 'log-uniform'))"
                )
            if p["parameterType"] == "double" and _float(space.get("min")) <= 0:
                out.append(
                    f"bayesianoptimization: parameter {p.get('name')!r} needs min > 0 (log-uniform)"
                )
    if name == "grid":
        out += _grid(spec, params)
    return out


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _grid(spec: dict[str, Any], params: list[dict[str, Any]]) -> list[str]:
    # optuna/service.py _validate_grid_setting + search_space.convert_to_combinations
    sizes = []
    for p in params:
        space = p.get("feasibleSpace") or {}
        kind = p.get("parameterType")
        if kind in ("categorical", "discrete"):
            sizes.append(len(space.get("list") or []))
            continue
        low, high, step = _float(space.get("min")), _float(space.get("max")), space.get("step")
        if kind == "double" and not step:
            return [f"grid: parameter {p.get('name')!r} step is nil"]
        if kind == "int":
            sizes.append(len(range(int(low), int(high) + 1, int(step or 1))))
        else:
            sizes.append(_arange_size(low, high, _float(step)))
    combinations = math.prod(sizes)
    most = _int(spec.get("maxTrialCount")) or 0
    if most > combinations:
        return [f"grid: Max Trial Count: {most} > all possible search combinations: {combinations}"]
    return []


def _arange_size(low: float, high: float, step: float) -> int:
    """``len(np.arange(low, high + step, step))``, less the last point when it passes ``high``.

    numpy sizes the range as ``ceil((stop - start) / step)`` and fills it with
    ``start + i * ((start + step) - start)``; the same float arithmetic here.
    """
    n = max(0, math.ceil((high + step - low) / step))
    delta = (low + step) - low
    if n and low + (n - 1) * delta > high:
        n -= 1
    return n


def _parameters(params: list[dict[str, Any]]) -> list[str]:
    out = []
    for i, p in enumerate(params):
        where = f"spec.parameters[{i}]"
        kind = p.get("parameterType", "")
        space = p.get("feasibleSpace") or {}
        if kind not in _PARAM_TYPES:
            out.append(f"{where}.parameterType: {kind!r} is not supported")
        if space.get("distribution", "") not in _DISTRIBUTIONS:
            out.append(f"{where}.feasibleSpace.distribution: {space['distribution']!r} unsupported")
        if not space:
            out.append(f"{where}.feasibleSpace: feasibleSpace must be specified")
        elif kind in ("int", "double"):
            if space.get("list"):
                out.append(f"{where}.feasibleSpace.list: not supported for parameterType {kind}")
            if not space.get("max") or not space.get("min"):
                out.append(f"{where}.feasibleSpace: max and min must be specified for {kind}")
        elif kind in ("categorical", "discrete") and any(
            space.get(k) for k in ("max", "min", "step")
        ):
            out.append(f"{where}.feasibleSpace: max, min and step are not supported for {kind}")
    names = [p.get("name") for p in params]
    if len(set(names)) != len(names):
        out.append("spec.parameters: duplicated parameter name")
    return out


def _trial_template(spec: dict[str, Any], params: list[dict[str, Any]]) -> list[str]:
    t = spec.get("trialTemplate")
    if not t:
        return ["spec.trialTemplate: must be specified"]
    out = []
    trial_spec = t.get("trialSpec")
    if not t.get("primaryContainerName"):
        out.append("spec.trialTemplate.primaryContainerName: must be specified")
    kind = (trial_spec or {}).get("kind")
    # experiment_defaults.go setDefaultTrialTemplate fills these for Job and TrainJob.
    defaulted = kind in ("Job", "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob", "TrainJob")
    if not defaulted and not (t.get("successCondition") and t.get("failureCondition")):
        out.append("spec.trialTemplate: successCondition and failureCondition must be specified")
    if t.get("trialParameters") is None:
        return [*out, "spec.trialTemplate.trialParameters: must be specified"]
    if trial_spec is None:
        return [*out, "spec.trialTemplate: trialSpec or configMap must be specified"]
    text = json.dumps(trial_spec)
    experiment_names = {p.get("name") for p in params}
    seen_names: set[str] = set()
    seen_refs: set[str] = set()
    for i, tp in enumerate(t["trialParameters"]):
        where = f"spec.trialTemplate.trialParameters[{i}]"
        name, ref = tp.get("name") or "", tp.get("reference") or ""
        if not name or not ref or "{" in name or "}" in name:
            out.append(f"{where}: name and reference must be specified, no '{{' or '}}' in name")
            continue
        if name in seen_names or ref in seen_refs:
            out.append(f"{where}: name {name!r} or reference {ref!r} is duplicated")
            continue
        seen_names.add(name)
        seen_refs.add(ref)
        if experiment_names and not _is_meta(ref) and ref not in experiment_names:
            out.append(f"{where}.reference: {ref!r} does not exist in spec.parameters")
        token = "${trialParameters." + name + "}"
        if token not in text:
            out.append(f"{where}.name: {name!r} is not used in spec.trialTemplate.trialSpec")
            return out
        text = text.replace(token, "test-value")
    left = _PARAM_REF.findall(text)
    if left:
        out.append(f"spec.trialTemplate: {left} are not in spec.trialTemplate.trialParameters")
    meta = trial_spec.get("metadata") or {}
    if meta.get("name") or meta.get("namespace"):
        out.append("spec.trialTemplate: metadata.name and metadata.namespace must be omitted")
    if not trial_spec.get("apiVersion") or not kind:
        out.append(
            "spec.trialTemplate: APIVersion and Kind in spec.trialTemplate must be specified"
        )
    elif (kind, trial_spec["apiVersion"]) not in TRIAL_RESOURCES:
        out.append(
            f"spec.trialTemplate: {kind} {trial_spec['apiVersion']} is not a trialResource of "
            f"this Katib install (katib-config.yaml)"
        )
    return out


def _is_meta(ref: str) -> bool:
    m = _META_REF.search(ref)
    if not m:
        return False
    key = m.group(1)
    sub = re.match(r"(.+)\[(.+)]", key)
    return key in _META_KEYS or bool(sub and sub.group(1) in _META_KEYS)


def _collector(spec: dict[str, Any]) -> list[str]:
    mc = spec.get("metricsCollectorSpec") or {}
    kind = (mc.get("collector") or {}).get("kind", "StdOut")
    if kind not in ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push"):
        return [f"spec.metricsCollectorSpec.collector.kind: invalid metrics collector kind {kind}"]
    return []
