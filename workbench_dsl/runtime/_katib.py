"""The cluster half of ``@sweep``: the trial template for Katib, the Experiment, the best model back.

Each trial pod runs ``runtime._pod`` with the trial function's invocation: the
upstream inputs as artifact URIs (downloaded in the pod), the searched
parameters as ``${trialParameters.*}`` placeholders Katib fills in, and, when
the function writes a model, an output staged at
``<best_model URI>.trials/<trial name>/<parameter>``; the best trial's copy
becomes ``best_model``. A ``@train`` step swept runs each trial as a TrainJob.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench_dsl import _env
from workbench_dsl.backends.sweeper.base import SweepResult
from workbench_dsl.runtime._invocation import (
    INVOCATION_JSON,
    TRIAL_PARAM_PREFIX,
    dumps,
    split_arguments,
)
from workbench_dsl.runtime._pod import TRIAL_NAME
from workbench_dsl.runtime.settings import SweepStepSettings
from workbench_dsl.runtime.train import cluster_job_spec, launcher_pod_owner

if TYPE_CHECKING:
    from workbench_dsl.backends.sweeper.kubernetes import TrialTemplate


def trial_template(
    fn: Callable[..., Any],
    source: str,
    name: str,
    step: SweepStepSettings,
    fixed: dict[str, Any],
    staging_uri: str | None,
) -> TrialTemplate:
    """The Katib trial template: a Job, or a TrainJob when the trial is a ``@train`` step."""
    params, artifacts = split_arguments(fn, fixed, with_paths=False)
    model_param = step.model_param
    if model_param:
        artifacts[model_param] = {
            "type": "system.Model",
            "name": model_param,
            "uri": "",
            "metadata": {},
            "output": True,
        }
    job = step.job()
    inv = {
        "source": source,
        "name": name,
        "params": params,
        "artifacts": artifacts,
        "trial": {
            "params": {p.name: p.to_spec() for p in step.search.params},
            "staging_uri": staging_uri,
        },
        "launcher": job.launcher if step.train else "python",
        "packages": list(job.cluster.packages),
    }
    return trial_job(name, step, dumps(inv))


def trial_job(name: str, step: SweepStepSettings, invocation_json: str) -> TrialTemplate:
    """The trial template of a sweep step's settings, each trial running ``invocation_json``."""
    from workbench_dsl.backends.sweeper.kubernetes import (
        TRIAL_NAME_PARAMETER,
        job_trial,
        placeholder,
        trainjob_trial,
    )

    env = {
        INVOCATION_JSON: invocation_json,
        TRIAL_NAME: placeholder(TRIAL_NAME_PARAMETER),
        **{TRIAL_PARAM_PREFIX + p.name: placeholder(p.name) for p in step.search.params},
    }
    spec = cluster_job_spec(name, step.job(), env)
    return trainjob_trial(spec) if step.train else job_trial(spec)


def run_on_katib(
    fn: Callable[..., Any],
    source: str,
    name: str,
    step: SweepStepSettings,
    fixed: dict[str, Any],
    best_model: Any,
    *,
    api_client: Any = None,
    poll_s: float = 5.0,
) -> SweepResult:
    """Run the sweep as a Katib Experiment; fetch the best trial's model into ``best_model``."""
    from workbench_dsl.backends.sweeper.base import Sweeper
    from workbench_dsl.backends.sweeper.kubernetes import KatibSweeper
    from workbench_dsl.backends.trainer import artifacts as store
    from workbench_dsl.backends.trainer.manifest import resource_name

    model_param = step.model_param
    staging = f"{best_model.uri.rstrip('/')}.trials" if best_model is not None else None
    template = trial_template(fn, source, name, step, fixed, staging)
    namespace = step.job().cluster.namespace
    sweeper: Sweeper[TrialTemplate] = KatibSweeper(
        api_client=api_client, namespace=namespace, poll_s=poll_s, status=_env.set_status
    )
    experiment = resource_name(name, os.environ.get("KFP_POD_UID") or uuid.uuid4().hex)
    result = sweeper.run(
        step.search, template, name=experiment, step=name, owner=launcher_pod_owner()
    )
    if model_param and staging:
        for record in result.trials:
            if record.state == "succeeded":
                record.model_uri = store.join(staging, record.name, model_param)
        uri = result.best.model_uri
        if best_model is not None and uri and store.exists(uri):
            store.download(uri, best_model.path)
    return result
