"""Cluster sweeper: a Katib Experiment, built with the ``kubeflow_katib_api`` models and followed to its end.

The Experiment carries the objective (with the ``latest`` strategy: a trial's
value is the last it reported, i.e. what it returned), the algorithm by
Katib's name and settings, early stopping, the parameters and the trial
counts. Trials run the trial template this backend is given: a batch Job (a
plain trial function) or a TrainJob (a ``@train`` step swept). Metrics reach
Katib through its stdout collector (``name=value`` lines). The best trial is
read back from ``status.currentOptimalTrial``; every trial from the Trial
resources. ``kubeflow.optimizer.OptimizerClient`` is not used: it offers only
random and grid search and no early stopping.
See https://www.kubeflow.org/docs/components/katib/user-guides/hp-tuning/configure-experiment/
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from workbench_dsl.backends.sweeper import algorithms
from workbench_dsl.backends.sweeper.base import (
    Param,
    SweepFailed,
    SweepResult,
    SweepSettings,
    TrialRecord,
)
from workbench_dsl.backends.trainer import manifest as trainjob_manifest
from workbench_dsl.backends.trainer._process import Terminated, sigterm_raises
from workbench_dsl.backends.trainer.base import TrainJobSpec
from workbench_dsl.backends.trainer.kubernetes import (
    condition_state,
    create_or_adopt,
    current_namespace,
    default_api_client,
    delete_quietly,
)

GROUP = "kubeflow.org"
VERSION = "v1beta1"
EXPERIMENTS = "experiments"
TRIALS = "trials"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
#: The trial parameter that carries the trial's own name (Katib trial metadata).
TRIAL_NAME_PARAMETER = "trialName"
#: The container of a Job trial that runs the trial function (Katib's primary container).
JOB_CONTAINER = "trial"


def placeholder(name: str) -> str:
    """What Katib replaces with a trial's value of parameter ``name``."""
    return "${trialParameters." + name + "}"


def _number(v: float | int | None) -> str | None:
    if v is None:
        return None
    return str(v) if isinstance(v, int) else repr(float(v))


def parameter_spec(p: Param) -> Any:
    """The Katib ``ParameterSpec`` of one searched parameter."""
    from kubeflow_katib_api import models as m

    if p.type in ("uniform", "loguniform"):
        return m.V1beta1ParameterSpec(
            name=p.name,
            parameterType="double",
            feasibleSpace=m.V1beta1FeasibleSpace(
                min=_number(p.low),
                max=_number(p.high),
                step=_number(p.step),
                distribution="logUniform" if p.type == "loguniform" else "uniform",
            ),
        )
    if p.type == "integer":
        return m.V1beta1ParameterSpec(
            name=p.name,
            parameterType="int",
            feasibleSpace=m.V1beta1FeasibleSpace(
                min=_number(int(p.low or 0)),
                max=_number(int(p.high or 0)),
                step=_number(int(p.step or 1)) if (p.step or 1) != 1 else None,
                distribution="logUniform" if p.log else "uniform",
            ),
        )
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in p.values)
    return m.V1beta1ParameterSpec(
        name=p.name,
        parameterType="discrete" if p.type == "grid" and numeric else "categorical",
        feasibleSpace=m.V1beta1FeasibleSpace(list=[str(v) for v in p.values]),
    )


@dataclass(frozen=True)
class TrialTemplate:
    """What each trial runs: a resource spec with ``${trialParameters.*}`` placeholders."""

    trial_spec: dict[str, Any]
    primary_container: str


def job_trial(spec: TrainJobSpec) -> TrialTemplate:
    """A batch Job running the trial function once (one pod), built with the Kubernetes models."""
    from kubernetes import client

    requests, limits = spec.resources.requests_and_limits()
    env = [client.V1EnvVar(name=k, value=v) for k, v in sorted(spec.env.items())]
    env += [
        client.V1EnvVar(
            name=s.name,
            value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name=s.secret, key=s.key)
            ),
        )
        for s in spec.secret_env
    ]
    job = client.V1Job(
        api_version="batch/v1",
        kind="Job",
        spec=client.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=int(spec.timeout) if spec.timeout else None,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(
                    labels={trainjob_manifest.STEP_LABEL: spec.name, **spec.labels},
                    annotations=dict(spec.annotations) or None,
                ),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    node_selector=dict(spec.node_selector) or None,
                    tolerations=[
                        client.V1Toleration(
                            key=t.key, operator=t.operator, value=t.value, effect=t.effect
                        )
                        for t in spec.tolerations
                    ]
                    or None,
                    containers=[
                        client.V1Container(
                            name=JOB_CONTAINER,
                            image=spec.image,
                            command=list(trainjob_manifest.POD_COMMAND),
                            env=env or None,
                            resources=client.V1ResourceRequirements(
                                requests=requests or None, limits=limits or None
                            )
                            if requests or limits
                            else None,
                        )
                    ],
                ),
            ),
        ),
    )
    body: dict[str, Any] = client.ApiClient().sanitize_for_serialization(job)
    return TrialTemplate(trial_spec=body, primary_container=JOB_CONTAINER)


def trainjob_trial(spec: TrainJobSpec) -> TrialTemplate:
    """A TrainJob per trial (a swept ``@train`` step), built with the Trainer models."""
    body = {
        "apiVersion": f"{trainjob_manifest.GROUP}/{trainjob_manifest.VERSION}",
        "kind": trainjob_manifest.KIND,
        "spec": trainjob_manifest.trainjob_spec(spec).to_dict(),
    }
    return TrialTemplate(trial_spec=body, primary_container=trainjob_manifest.NODE)


def build_experiment(
    settings: SweepSettings,
    trial: TrialTemplate,
    *,
    name: str,
    namespace: str,
    step: str,
    owner: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Experiment manifest as the API server receives it (camelCase JSON)."""
    from kubeflow_katib_api import models as m

    es = None
    if settings.early_stopping:
        es = m.V1beta1EarlyStoppingSpec(
            algorithmName=settings.early_stopping.algorithm,
            algorithmSettings=[
                m.V1beta1EarlyStoppingSetting(name=k, value=str(v))
                for k, v in sorted(settings.early_stopping.settings.items())
            ]
            or None,
        )
    trial_parameters = [
        m.V1beta1TrialParameterSpec(name=p.name, reference=p.name, description=p.type)
        for p in settings.params
    ]
    trial_parameters.append(
        m.V1beta1TrialParameterSpec(
            name=TRIAL_NAME_PARAMETER,
            reference="${trialSpec.Name}",
            description="the trial's name (where its outputs are staged)",
        )
    )
    experiment = m.V1beta1Experiment(
        apiVersion=f"{GROUP}/{VERSION}",
        kind="Experiment",
        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={trainjob_manifest.STEP_LABEL: step},
            ownerReferences=trainjob_manifest.pod_owner(
                m.IoK8sApimachineryPkgApisMetaV1OwnerReference, owner
            ),
        ),
        spec=m.V1beta1ExperimentSpec(
            objective=m.V1beta1ObjectiveSpec(
                type=settings.goal,
                objectiveMetricName=settings.objective,
                additionalMetricNames=[x for x in settings.metrics or () if x != settings.objective]
                or None,
                metricStrategies=[m.V1beta1MetricStrategy(name=settings.objective, value="latest")],
            ),
            algorithm=m.V1beta1AlgorithmSpec(
                algorithmName=settings.algorithm,
                algorithmSettings=[
                    m.V1beta1AlgorithmSetting(name=k, value=v)
                    for k, v in algorithms.katib_algorithm_settings(settings)
                ]
                or None,
            ),
            earlyStopping=es,
            parameters=[parameter_spec(p) for p in settings.params],
            maxTrialCount=settings.total_trials(),
            parallelTrialCount=settings.running_at_once(),
            maxFailedTrialCount=settings.failures_allowed(),
            metricsCollectorSpec=m.V1beta1MetricsCollectorSpec(
                collector=m.V1beta1CollectorSpec(kind="StdOut")
            ),
            trialTemplate=m.V1beta1TrialTemplate(
                primaryContainerName=trial.primary_container,
                retain=True,
                trialParameters=trial_parameters,
                trialSpec=trial.trial_spec,
            ),
        ),
    )
    result: dict[str, Any] = experiment.to_dict()
    return result


_TRIAL_STATES = {
    "Succeeded": "succeeded",
    "EarlyStopped": "pruned",
    "Failed": "failed",
    "MetricsUnavailable": "failed",
    "Killed": "failed",
}


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return None


def _metric_values(observation: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in (observation or {}).get("metrics") or []:
        with contextlib.suppress(TypeError, ValueError, KeyError):
            out[metric["name"]] = float(metric["latest"])
    return out


def trial_record(number: int, trial: dict[str, Any], settings: SweepSettings) -> TrialRecord:
    """One Katib Trial as a :class:`TrialRecord` (parameters typed back from text)."""
    params_by_name = {p.name: p for p in settings.params}
    spec = trial.get("spec") or {}
    status = trial.get("status") or {}
    params: dict[str, Any] = {}
    for a in spec.get("parameterAssignments") or []:
        p = params_by_name.get(a.get("name"))
        if p is not None:
            params[p.name] = p.coerce(str(a.get("value")))
    state, error = "running", None
    for c in status.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in _TRIAL_STATES:
            state = _TRIAL_STATES[c["type"]]
            if state == "failed":
                error = c.get("message") or c.get("reason")
    metrics = _metric_values(status.get("observation"))
    start, end = _time(status.get("startTime")), _time(status.get("completionTime"))
    return TrialRecord(
        number=number,
        name=trial["metadata"]["name"],
        state=state,
        params=params,
        value=metrics.get(settings.objective) if state == "succeeded" else None,
        metrics=metrics,
        duration_s=(end - start).total_seconds() if start and end else None,
        error=error,
    )


class KatibSweeper:
    """Runs a sweep as a Katib Experiment.

    Args:
        api_client: A ``kubernetes.client.ApiClient`` (default: in-cluster config).
        namespace: Where to create it (default: this pod's namespace).
        poll_s: Seconds between status reads.
        out: Where progress lines go (default stdout).
        status: Called with one line of progress when it changes.
    """

    def __init__(
        self,
        *,
        api_client: Any = None,
        namespace: str | None = None,
        poll_s: float = 5.0,
        out: IO[str] | None = None,
        status: Callable[[str], None] | None = None,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.poll_s = poll_s
        self.out = out
        self.status = status

    def run(
        self,
        settings: SweepSettings,
        trial: TrialTemplate,
        *,
        name: str | None = None,
        step: str | None = None,
        owner: dict[str, str] | None = None,
    ) -> SweepResult:
        """Create the Experiment ``name``, wait for it to end, return the best and every trial.

        ``name`` defaults to ``step`` and ``step`` (the label) to ``name``; one is needed.
        """
        if not (name or step):
            raise ValueError("KatibSweeper.run: name the Experiment (name=) or its step (step=)")
        name = name or step
        step = step or name
        assert name is not None and step is not None
        from kubernetes import client

        api = self.api_client or default_api_client()
        ns = self.namespace or current_namespace()
        custom = client.CustomObjectsApi(api)
        out = self.out or sys.stdout
        body = build_experiment(settings, trial, name=name, namespace=ns, step=step, owner=owner)
        where = (GROUP, VERSION, ns, EXPERIMENTS)
        what = f"Katib Experiment {ns}/{name}"
        if create_or_adopt(custom, where, body, what=what, failed=SweepFailed):
            out.write(f"created {what} ({settings.algorithm})\n")
        else:
            out.write(f"{what} exists already: following it\n")
        out.flush()
        last = ""
        with sigterm_raises():
            try:
                while True:
                    exp = custom.get_namespaced_custom_object(GROUP, VERSION, ns, EXPERIMENTS, name)
                    line = self._progress(exp, settings)
                    if line != last:
                        out.write(line + "\n")
                        out.flush()
                        if self.status:
                            self.status(line)
                        last = line
                    state, message = condition_state(exp, done="Succeeded")
                    if state == "Succeeded":
                        break
                    if state == "Failed":
                        raise SweepFailed(f"Katib Experiment {ns}/{name} failed: {message}")
                    time.sleep(self.poll_s)
            except (Terminated, KeyboardInterrupt):
                out.write(f"cancelled: deleting {what}\n")
                delete_quietly(custom, where, name)
                raise
        listed = custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, TRIALS, label_selector=f"{EXPERIMENT_LABEL}={name}"
        )
        items = sorted(
            listed.get("items") or [],
            key=lambda t: (t["metadata"].get("creationTimestamp") or "", t["metadata"]["name"]),
        )
        records = [trial_record(i, t, settings) for i, t in enumerate(items)]
        best_name = ((exp.get("status") or {}).get("currentOptimalTrial") or {}).get(
            "bestTrialName"
        )
        best = next((r for r in records if r.name == best_name), None)
        if best is None or best.value is None:
            raise SweepFailed(f"Katib Experiment {ns}/{name} ended with no successful trial")
        return SweepResult(best=best, trials=records)

    @staticmethod
    def _progress(exp: dict[str, Any], settings: SweepSettings) -> str:
        status = exp.get("status") or {}
        done = sum(
            int(status.get(k) or 0)
            for k in ("trialsSucceeded", "trialsFailed", "trialsEarlyStopped", "trialsKilled")
        )
        line = f"trial {done}/{settings.total_trials()}"
        best = _metric_values((status.get("currentOptimalTrial") or {}).get("observation"))
        if settings.objective in best:
            line += f", best {settings.objective} {best[settings.objective]:.4g}"
        running = int(status.get("trialsRunning") or 0)
        if running:
            line += f" ({running} running)"
        return line
