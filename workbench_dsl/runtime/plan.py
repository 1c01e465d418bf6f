"""The Kubernetes objects a run of a compiled pipeline would create, rendered before it runs.

Each launcher component of the PipelineSpec (``@train``, ``@sweep``,
``@serve``, the prebuilt ``deploy``) carries the settings its runtime reads;
this module builds from them, with the same builders the launchers use, the
TrainJob, the Katib Experiment (with its trial template) and the
InferenceService (and the canary patch a later deployment applies). What only
exists at run time (the step's inputs, the launcher pod, the registered model's
files) is a placeholder marked ``<run time: ...>`` or listed in the object's
``placeholders``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

#: Marks a value that only exists when the run happens.
RUN_TIME = "<run time: {}>"
#: A placeholder storage URI: KServe's webhook checks the scheme, so it keeps one.
MODEL_STORAGE = "s3://run-time/registered-model-version"
#: The placeholder launcher pod (an owner of what it creates).
LAUNCHER_POD = {"name": "run-time-launcher-pod", "uid": "00000000-0000-0000-0000-000000000000"}


def run_time(what: str) -> str:
    return RUN_TIME.format(what)


@dataclass(frozen=True)
class PlannedObject:
    """One object a run would create (or a patch it would apply)."""

    #: The pipeline task (executor) that creates it.
    step: str
    #: ``TrainJob``, ``Experiment``, ``InferenceService`` or ``InferenceService patch``.
    what: str
    body: dict[str, Any]
    #: For a patch: the object it is applied to (what the API server validates is the result).
    base: dict[str, Any] | None = None
    #: Field -> what fills it at run time.
    placeholders: dict[str, str] = field(default_factory=dict)
    #: What the control plane would refuse that the object alone does not show.
    problems: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        kind = self.what.lower().replace(" ", "-")
        return f"{self.step}.{kind}.yaml"


def _executor_tasks(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """executor label -> the tasks (in any DAG) that run it."""
    components = spec.get("components") or {}
    found: dict[str, list[dict[str, Any]]] = {}
    dags = [spec.get("root") or {}, *list(components.values())]
    for dag in dags:
        for task in ((dag.get("dag") or {}).get("tasks") or {}).values():
            comp = components.get((task.get("componentRef") or {}).get("name", ""), {})
            label = comp.get("executorLabel")
            if label:
                found.setdefault(label, []).append(task)
    return found


def _constants(task: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A task's inputs known before the run: constants and the pipeline's own parameters."""
    inputs = ((task.get("inputs") or {}).get("parameters")) or {}
    out = {}
    for name, value in inputs.items():
        constant = (value.get("runtimeValue") or {}).get("constant")
        if constant is None and value.get("componentInputParameter") in params:
            constant = params[value["componentInputParameter"]]
        if constant is not None:
            out[name] = constant
    return out


def _prebuilt_kind(program: str) -> str | None:
    """``train`` or ``sweep`` for the prebuilt components of ``components/`` (plain KFP users)."""
    if "job_config_from_parameters" not in program:
        return None
    if "from workbench_dsl.runtime.sweep import launch_prebuilt" in program:
        return "sweep"
    if "launch_prebuilt" in program:
        return "train"
    return None


def _defaults(spec: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    comp = (spec.get("components") or {}).get((task.get("componentRef") or {}).get("name", ""), {})
    params = ((comp.get("inputDefinitions") or {}).get("parameters")) or {}
    return {k: v["defaultValue"] for k, v in params.items() if "defaultValue" in v}


def plan_prebuilt(step: str, kind: str, inputs: dict[str, Any]) -> list[PlannedObject]:
    """The TrainJob or Experiment of a prebuilt ``train``/``sweep`` component's task.

    Its settings are inputs: those known before the run (constants, pipeline
    parameters, defaults) are used; without a function name or a search space
    there is nothing to show.
    """
    from workbench_dsl.runtime.settings import TrainSettings

    name = str(inputs.get("function_name") or "")
    if not name:
        return []
    job = TrainSettings.from_parameters(
        **{
            k: inputs[k]
            for k in (
                "nodes",
                "procs_per_node",
                "runtime",
                "cpu",
                "memory",
                "gpus",
                "gpu_resource",
                "image",
                "namespace",
                "artifact_store",
                "artifact_secret",
            )
        },
        env=inputs.get("env"),
        timeout_s=float(inputs.get("timeout_s") or 0.0),
        step=name,
    )
    if kind == "train":
        return [plan_train(step, job.to_json())]
    if not isinstance(inputs.get("space"), dict) or not inputs.get("objective"):
        return []
    failed, seed = int(inputs.get("max_failed_trials", -1)), int(inputs.get("seed", -1))
    es = str(inputs.get("early_stopping") or "")
    config = {
        "space": inputs["space"],
        "objective": inputs["objective"],
        "goal": inputs.get("goal", "maximize"),
        "algorithm": inputs.get("algorithm", "tpe"),
        "max_trials": int(inputs.get("max_trials", 20)),
        "parallel_trials": int(inputs.get("parallel_trials", 2)),
        "max_failed_trials": None if failed < 0 else failed,
        "early_stopping": {"algorithm": es, "settings": {}} if es else None,
        "seed": None if seed < 0 else seed,
        "step": name,
        "train": job.to_json() if job.world_size > 1 else None,
        "trial": {"env": dict(job.env), "cluster": job.cluster.to_json()},
    }
    return [plan_sweep(step, config)]


def pipeline_parameters(spec: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's parameters: the given values over the defaults."""
    root = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    out = {k: v["defaultValue"] for k, v in root.items() if "defaultValue" in v}
    return {**out, **given}


def plan_pipeline(
    spec: dict[str, Any], params: dict[str, Any] | None = None
) -> list[PlannedObject]:
    """Every cluster object the launchers of ``spec`` (a PipelineSpec as a dict) would create.

    ``params`` are the run's pipeline parameters (defaults fill the rest); a step
    input fed by one of them, or by a constant, is shown with its value.
    """
    values = pipeline_parameters(spec, params or {})
    from workbench_dsl.backends.lineage.launchers import parse

    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    tasks = _executor_tasks(spec)
    planned: list[PlannedObject] = []
    for label, executor in sorted(executors.items()):
        container = executor.get("container") or {}
        # A lightweight component's program is the last word of its command.
        command = container.get("command") or [""]
        program = str(command[-1])
        launcher = parse(program)
        step = label.removeprefix("exec-")
        if launcher is None:
            prebuilt = _prebuilt_kind(program)
            if prebuilt:
                for task in tasks.get(label, []):
                    inputs = {**_defaults(spec, task), **_constants(task, values)}
                    planned += plan_prebuilt(step, prebuilt, inputs)
            continue
        cfg = launcher.config
        if launcher.kind == "train" and cfg:
            planned.append(plan_train(step, cfg))
        elif launcher.kind == "sweep" and cfg:
            planned.append(plan_sweep(step, cfg))
        elif launcher.kind == "serve":
            given = [_constants(t, values) for t in tasks.get(label, [])] or [{}]
            for inputs in given:
                planned += plan_serve(step, cfg, inputs)
    return planned


def plan_train(step: str, config: dict[str, Any]) -> PlannedObject:
    """The TrainJob of a ``@train`` step."""
    from workbench_dsl.backends.trainer.manifest import build_trainjob, resource_name
    from workbench_dsl.runtime._invocation import INVOCATION_JSON
    from workbench_dsl.runtime.settings import TrainSettings
    from workbench_dsl.runtime.train import cluster_job_spec

    settings = TrainSettings.from_json(config)
    name = settings.step or step
    invocation = run_time("the step's function and inputs (artifact URIs)")
    spec = cluster_job_spec(name, settings, {INVOCATION_JSON: invocation})
    placeholders = {
        "metadata.name": "the suffix hashes the launcher pod's UID",
        "metadata.ownerReferences": "the launcher pod",
        f"spec.trainer.env[{INVOCATION_JSON}]": invocation,
    }
    namespace = _namespace(settings.cluster.namespace, placeholders)
    body = build_trainjob(
        spec, name=resource_name(name, "plan"), namespace=namespace, owner=LAUNCHER_POD
    )
    return PlannedObject(step=step, what="TrainJob", body=body, placeholders=placeholders)


def plan_sweep(step: str, config: dict[str, Any]) -> PlannedObject:
    """The Katib Experiment (and trial template) of a ``@sweep`` step."""
    from workbench_dsl.backends.sweeper.base import SweepSettings
    from workbench_dsl.backends.sweeper.kubernetes import build_experiment
    from workbench_dsl.backends.trainer.manifest import resource_name
    from workbench_dsl.runtime._invocation import INVOCATION_JSON
    from workbench_dsl.runtime._katib import job_settings, trial_job

    name = str(config.get("step") or step)
    settings = SweepSettings.from_config(config)
    invocation = run_time("the trial function and the step's inputs (artifact URIs)")
    trial = trial_job(name, config, settings, invocation)
    job = job_settings(config)
    placeholders = {
        "metadata.name": "the suffix hashes the launcher pod's UID",
        "metadata.ownerReferences": "the launcher pod",
        f"trialSpec env {INVOCATION_JSON}": invocation,
        "${trialParameters.*}": "Katib fills in each trial's assignment",
    }
    body = build_experiment(
        settings,
        trial,
        name=resource_name(name, "plan"),
        namespace=_namespace(job.cluster.namespace, placeholders),
        step=name,
        owner=LAUNCHER_POD,
    )
    return PlannedObject(step=step, what="Experiment", body=body, placeholders=placeholders)


def plan_serve(
    step: str, config: dict[str, Any], inputs: dict[str, Any], *, flavor: str = "pyfunc"
) -> list[PlannedObject]:
    """The InferenceService of a ``@serve``/``deploy`` step, and the canary patch of a later run.

    The model's flavor is known only when the registered version is resolved;
    ``flavor`` says which to show (an MLflow pyfunc by default).
    """
    from workbench_dsl.backends.deployer.kubernetes import (
        DEFAULT_DEPLOYMENT_MODE,
        canary_patch,
        cluster_problems,
        inference_service,
    )
    from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE
    from workbench_dsl.runtime.serve_settings import ServeOptionError, ServeSettings

    settings = ServeSettings.from_json(config)
    refused: tuple[str, ...] = ()
    try:
        settings = settings.with_inputs(inputs)
    except ServeOptionError as e:
        refused = (f"step {step}: {e}",)  # shown with the step's own settings
    placeholders = {}
    if not settings.endpoint:
        settings = replace(settings, endpoint="run-time-endpoint")
        placeholders["metadata.name"] = "the step's endpoint input"
    model_uri = str(inputs.get("model_uri") or run_time("the step's model_uri input"))
    spec = settings.deploy_spec(model_uri, MODEL_STORAGE, flavor)
    mode = settings.kserve_deployment_mode or DEFAULT_DEPLOYMENT_MODE
    image = settings.cluster.image or DEFAULT_RUNTIME_IMAGE
    namespace = _namespace(settings.cluster.namespace, placeholders)
    created = inference_service(spec, namespace, image=image, deployment_mode=mode)
    placeholders.update(
        {
            "metadata.annotations[workbench.dev/model-uri]": "the step's model_uri input",
            "storageUri / STORAGE_URI": "where the registry keeps the version's files",
        }
    )
    if not spec.predictor_source:
        placeholders["modelFormat"] = (
            "shown for an MLflow pyfunc/pytorch model (mlflow); an sklearn model gets sklearn"
        )
    first = PlannedObject(
        step=step,
        what="InferenceService",
        body=created,
        placeholders=placeholders,
        problems=refused + tuple(cluster_problems(spec, mode, canary=False)),
    )
    patch = PlannedObject(
        step=step,
        what="InferenceService patch",
        body=canary_patch(spec, image=image, deployment_mode=mode),
        base=created,
        placeholders={"(applied when)": "the endpoint already exists: a canary rollout"},
        problems=refused + tuple(cluster_problems(spec, mode, canary=True)),
    )
    return [first, patch]


def _namespace(ns: Any, placeholders: dict[str, str]) -> str:
    if ns:
        return str(ns)
    placeholders["metadata.namespace"] = "the launcher pod's namespace"
    return "default"


def dumps(obj: PlannedObject) -> str:
    """The object as a YAML document, its placeholders and problems as a comment header."""
    import yaml

    lines = [f"# {obj.what} created by step {obj.step}"]
    if obj.base is not None:
        lines.append("# a JSON merge patch of the InferenceService above")
    for key, what in obj.placeholders.items():
        lines.append(f"# placeholder {key}: {what}")
    text = yaml.safe_dump(json.loads(json.dumps(obj.body)), sort_keys=True, width=100)
    return "\n".join(lines) + "\n" + text
