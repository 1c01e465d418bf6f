"""Body of the ``@sweep`` launcher: an Optuna study locally, a Katib Experiment on a cluster.

Either way the step's outputs are the same: ``best_params`` (dict),
``best_value`` (float), ``trials`` (a CSV Dataset, one row per trial with its
parameters, metrics, state and duration) and, when the trial function has an
``Output[Model]`` parameter, ``best_model`` (a copy of the best trial's model).
Upstream inputs (datasets, parameters) are handed to every trial unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench_dsl import _env
from workbench_dsl.backends.sweeper.base import (
    RunTrial,
    Sweeper,
    SweepResult,
    SweepSettings,
    TrialPruned,
    TrialRecord,
)
from workbench_dsl.runtime._lineage import reporting
from workbench_dsl.runtime._placement import on_cluster
from workbench_dsl.runtime._training_data import stamp_models
from workbench_dsl.runtime._user import load_function
from workbench_dsl.runtime.settings import SweepStepSettings, TrainSettings

_METADATA = "_workbench_metadata.json"


@reporting("sweep")
def launch(source: str, name: str, config_json: str, kwargs: dict[str, Any]) -> Any:
    """Run the sweep of trial function ``name``; return ``(best_params, best_value)``."""
    step = SweepStepSettings.from_json(json.loads(config_json))
    fn = load_function(source, name)
    trials_out = kwargs.get("trials")
    best_model = kwargs.get("best_model")
    searched = {p.name for p in step.search.params}
    wanted = inspect.signature(fn).parameters
    fixed = {
        k: v
        for k, v in kwargs.items()
        if k in wanted and k not in searched and k != step.model_param
    }
    result = _sweep(fn, source, name, step, fixed, trials_out, best_model)
    if best_model is not None and step.model_param:
        stamp_models(fn, {**fixed, step.model_param: best_model})
    return result


def _sweep(
    fn: Callable[..., Any],
    source: str,
    name: str,
    step: SweepStepSettings,
    fixed: dict[str, Any],
    trials_out: Any,
    best_model: Any,
) -> tuple[dict[str, Any], float]:
    if on_cluster():
        from workbench_dsl.runtime._katib import run_on_katib

        result = run_on_katib(fn, source, name, step, fixed, best_model)
    else:
        result = run_locally(fn, source, name, step, fixed)
        if best_model is not None and result.best.model_uri:
            copy_model(Path(result.best.model_uri), best_model)
    if trials_out is not None:
        write_trials(result, step.search, trials_out)
    if best_model is not None:
        best_model.metadata.update(
            {
                "trial": result.best.number,
                step.search.objective: result.best.value,
                "params": result.best.params,
            }
        )
    assert result.best.value is not None
    return (dict(result.best.params), float(result.best.value))


def launch_prebuilt(
    function_source: str,
    function_name: str,
    search: SweepSettings,
    arguments: dict[str, Any] | None,
    artifacts: dict[str, Any],
    trials_out: Any,
    best_model: Any,
    job: TrainSettings,
) -> tuple[dict[str, Any], float]:
    """Body of the prebuilt ``sweep`` component: the trial function given as source text.

    ``search`` is the component's search (:meth:`SweepSettings.from_parameters`),
    ``job`` the compute of each trial (:meth:`TrainSettings.from_parameters`).
    """
    from workbench_dsl.runtime.train import call_arguments

    fn = load_function(function_source, function_name)
    settings = search
    settings.validate()
    params = inspect.signature(fn).parameters
    missing = [p.name for p in settings.params if p.name not in params]
    if missing:
        raise TypeError(
            f"space names {', '.join(map(repr, missing))}, not parameter(s) of "
            f"{function_name}() (parameters: {', '.join(params)})"
        )
    searched = {p.name for p in settings.params}
    clash = sorted(searched & set(arguments or {}))
    if clash:
        raise TypeError(f"{', '.join(map(repr, clash))} is searched; do not pass it in arguments")
    model_param = "model" if "model" in params else None
    fixed = call_arguments(fn, arguments, artifacts)
    step = SweepStepSettings.for_prebuilt(
        settings, job, step=function_name, model_param=model_param
    )
    return _sweep(fn, function_source, function_name, step, fixed, trials_out, best_model)


def study_location(name: str, step: SweepStepSettings, source: str) -> tuple[Path, str]:
    """``(journal file, study name)``: under the run's directory, so a resumed run finds it.

    The study name carries a digest of the function and the sweep's settings:
    a run resumed with the same step continues; a changed step starts afresh.
    """
    run_dir = os.environ.get(_env.RUN_DIR)
    base = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="sweep-"))
    task = os.environ.get(_env.TASK) or name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", task).strip("_") or name
    settings = json.dumps(step.to_json(), sort_keys=True)
    digest = hashlib.sha256((source + settings).encode()).hexdigest()[:10]
    return base / "sweeps" / safe / "study.journal", f"{name}-{digest}"


def run_locally(
    fn: Callable[..., Any],
    source: str,
    name: str,
    step: SweepStepSettings,
    fixed: dict[str, Any],
) -> SweepResult:
    """Run the trials in local processes with Optuna; return every trial and the best."""
    from workbench_dsl.backends.sweeper.local import OptunaSweeper

    journal, study = study_location(name, step, source)
    trials_dir = journal.parent / "trials"
    model_param = step.model_param
    train = step.train

    def run_trial(params: dict[str, Any], record: TrialRecord) -> dict[str, Any]:
        kw = {**fixed, **params}
        model = None
        if model_param:
            from kfp import dsl

            path = trials_dir / str(record.number) / model_param
            path.parent.mkdir(parents=True, exist_ok=True)
            model = dsl.Model(name=model_param, uri=str(path))
            kw[model_param] = model
        if train and train.world_size > 1:
            from workbench_dsl.backends.trainer.base import TrainingFailed

            trials_dir.mkdir(parents=True, exist_ok=True)
            from workbench_dsl.runtime.train import run_locally as train_locally

            try:
                metrics = train_locally(
                    fn,
                    source,
                    name,
                    kw,
                    nodes=train.nodes,
                    procs_per_node=train.procs_per_node,
                    workdir=trials_dir,
                )
            except TrainingFailed as e:
                if e.error_type == "TrialPruned":
                    raise TrialPruned(str(e)) from None
                raise
        else:
            metrics = fn(**kw)
        if model is not None:
            record.model_uri = model.path
            Path(model.path).parent.joinpath(_METADATA).write_text(
                json.dumps(model.metadata, default=str), encoding="utf-8"
            )
        return metrics  # type: ignore[no-any-return]

    sweeper: Sweeper[RunTrial] = OptunaSweeper(
        journal=journal, study_name=study, status=_env.set_status
    )
    return sweeper.run(step.search, run_trial)


def copy_model(src: Path, best_model: Any) -> None:
    """Copy the best trial's model (a file or a directory) to the step's output."""
    dest = Path(best_model.path)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    elif src.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    meta = src.parent / _METADATA
    if meta.exists():
        best_model.metadata.update(json.loads(meta.read_text(encoding="utf-8")))


def write_trials(result: SweepResult, settings: SweepSettings, out: Any) -> None:
    """The ``trials`` Dataset: a CSV, one row per trial."""
    params = [p.name for p in settings.params]
    metrics: list[str] = []
    for t in result.trials:
        for k in t.metrics:
            if k not in metrics:
                metrics.append(k)
    header = [
        "trial",
        "state",
        settings.objective,
        "duration_s",
        *(f"params.{p}" for p in params),
        *(f"metrics.{m}" for m in metrics),
        "error",
    ]
    path = Path(out.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for t in result.trials:
            w.writerow(
                [
                    t.number,
                    t.state,
                    "" if t.value is None else t.value,
                    "" if t.duration_s is None else t.duration_s,
                    *("" if t.params.get(p) is None else t.params[p] for p in params),
                    *("" if t.metrics.get(m) is None else t.metrics[m] for m in metrics),
                    t.error or "",
                ]
            )
    out.metadata.update(
        {
            "format": "csv",
            "rows": len(result.trials),
            "objective": settings.objective,
            "goal": settings.goal,
            "best_trial": result.best.number,
        }
    )
