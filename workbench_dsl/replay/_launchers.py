"""Replaying a launcher step: the user's function, not the launcher around it.

A ``@train`` step replays one rank (rank 0 of a world of one), a ``@sweep`` one
trial (with the sweep's best parameters, or the start of each range when it
found none; ``-p`` sets any of them), a ``@register`` step its evaluation and
gate check (nothing is registered), and a ``@serve`` step its predictor on a
sample (``-p instances=[...]``, else the model's saved input example), with
nothing deployed. The compiled wrapper imports ``launch`` from
``workbench_dsl.runtime.<kind>`` when it is called, so replacing that
attribute before the wrapper runs is enough.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
from typing import Any


def install(launcher: dict[str, Any]) -> str:
    """Swap ``runtime.<kind>.launch`` for its replay; the user's source file name (for pdb)."""
    import importlib

    kind = launcher["kind"]
    module = importlib.import_module(f"workbench_dsl.runtime.{kind}")
    replay = {"train": _train, "sweep": _sweep, "register": _register, "serve": _serve}[kind]
    extra = dict(launcher.get("extra") or {})

    def launch(source: str, name: str, config_json: str, kwargs: dict[str, Any]) -> Any:
        return replay(source, name, json.loads(config_json), kwargs, extra)

    module.launch = launch  # type: ignore[attr-defined]
    if kind == "serve":
        return f"<predictor {launcher['config'].get('predictor_name')}>"
    return f"<step {launcher['name']}>"


def _own(fn: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    wanted = inspect.signature(fn).parameters
    return {k: v for k, v in kwargs.items() if k in wanted}


def _say(text: str) -> None:
    print(f"replay: {text}", flush=True)


def _train(
    source: str, name: str, config: dict[str, Any], kwargs: dict[str, Any], extra: dict[str, Any]
) -> Any:
    from workbench_dsl.runtime._user import load_function

    fn = load_function(source, name)
    world = int(config.get("nodes", 1)) * int(config.get("procs_per_node", 1))
    if world > 1:
        _say(f"rank 0 of {world}, as a world of one process")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        LOCAL_WORLD_SIZE="1",
        NODE_RANK="0",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    return fn(**_own(fn, kwargs))


def _sweep(
    source: str, name: str, config: dict[str, Any], kwargs: dict[str, Any], extra: dict[str, Any]
) -> Any:
    from workbench_dsl.runtime._user import load_function

    fn = load_function(source, name)
    model_param = config.get("model_param")
    searched = set(config.get("space") or {})
    fixed = {k: v for k, v in _own(fn, kwargs).items() if k not in searched and k != model_param}
    trial = {k: v for k, v in extra.items() if k in searched}
    _say(f"one trial with {json.dumps(trial, sort_keys=True, default=str)}")
    call = {**fixed, **trial}
    if model_param:
        call[model_param] = kwargs.get("best_model")
    metrics = fn(**call)
    _say(f"trial returned {json.dumps(metrics, sort_keys=True, default=str)}")
    objective = str(config.get("objective") or "")
    value = metrics.get(objective) if isinstance(metrics, dict) else metrics
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RuntimeError(f"the trial returned no number for the objective {objective!r}")
    return (trial, float(value))


def _register(
    source: str, name: str, config: dict[str, Any], kwargs: dict[str, Any], extra: dict[str, Any]
) -> Any:
    from workbench_dsl.runtime._gate import check_gate, parse_gate
    from workbench_dsl.runtime._user import load_function
    from workbench_dsl.runtime.register import RegisterOutputs, RegisterSettings, _metrics

    settings = RegisterSettings.from_config(config)
    fn = load_function(source, name)
    values = _metrics(fn(**_own(fn, kwargs)), settings.step)
    _say(f"evaluation returned {json.dumps(values, sort_keys=True)}")
    for c in check_gate(parse_gate(settings.gate), values):
        _say(f"gate: {c}")
    _say("nothing registered (a replay never writes to the registry)")
    return RegisterOutputs(False, "", "")


def _serve(
    source: str, name: str, config: dict[str, Any], kwargs: dict[str, Any], extra: dict[str, Any]
) -> Any:
    from workbench_dsl.backends.deployer._predictors import load_revision, model_dir
    from workbench_dsl.runtime.serve import ServeOutputs, _locate
    from workbench_dsl.runtime.serve_settings import ServeSettings

    settings = ServeSettings.from_json(config)
    storage, flavor, _ = _locate(str(kwargs.get("model_uri") or ""), settings, local=True)
    sample = extra.get("instances")
    if sample is None:
        sample = _input_example(model_dir(storage))
    if sample is None:
        raise RuntimeError(
            "no sample to predict: give one with -p instances='[[...]]' (the model has no "
            "saved input example)"
        )
    predictor = load_revision(storage, flavor, settings.predictor_source, settings.predictor_name)
    _say(f"predicting {len(sample)} instance(s) with {kwargs.get('model_uri')}")
    result = predictor.predict(sample)
    _say(f"predictions: {json.dumps(result, default=str)[:2000]}")
    _say("nothing deployed (a replay never starts an endpoint)")
    return ServeOutputs("", "")


def _input_example(path: Any) -> list[Any] | None:
    """The MLflow model's saved input example as a list of instances, if it has one."""
    import yaml

    try:
        meta = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8")) or {}
    except OSError:
        return None
    info = meta.get("saved_input_example_info") or {}
    file = path / str(info.get("artifact_path") or "input_example.json")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and "data" in data:
        return list(data["data"])
    if isinstance(data, dict) and "inputs" in data:
        return list(data["inputs"])
    return data if isinstance(data, list) else None
