"""``@sweep``'s launcher settings: one frozen type written by the decorator, read back strictly."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from workbench_dsl import Model, Output, space, sweep
from workbench_dsl.backends.lineage.launchers import parse
from workbench_dsl.backends.sweeper.base import EarlyStopping, Param, SweepSettings
from workbench_dsl.dsl._launcher import function_source
from workbench_dsl.runtime.settings import SettingsError, SweepStepSettings
from workbench_dsl.runtime.sweep import launch


@sweep(
    space={
        "lr": space.loguniform(1e-4, 1e-1),
        "depth": space.integer(2, 8, step=2),
        "momentum": space.uniform(0.5, 0.9, step=0.1),
        "opt": space.categorical(["adam", "sgd"]),
        "width": space.grid([64, 128]),
    },
    objective="acc",
    algorithm="random",
    max_trials=2,
    parallel_trials=1,
    max_failed_trials=1,
    early_stopping={"algorithm": "medianstop", "start_step": 2},
    seed=3,
    metrics=["loss"],
    env={"A": "1"},
)
def trial(
    lr: float, depth: int, momentum: float, opt: str, width: int, model: Output[Model]
) -> dict:  # type: ignore[type-arg]
    return {"acc": lr * depth, "loss": 1.0}


@sweep(space={"x": space.uniform(0.0, 1.0)}, objective="v", max_trials=1, parallel_trials=1)
def small(x: float) -> dict:  # type: ignore[type-arg]
    return {"v": x}


def _baked(step: Any) -> dict[str, Any]:
    """The settings JSON the compiled launcher component carries."""
    launcher = parse(step.component.component_spec.implementation.container.command[-1])
    assert launcher is not None and launcher.kind == "sweep"
    return json.loads(json.dumps(launcher.config))


def test_the_compiled_component_carries_exactly_the_typed_settings() -> None:
    baked = _baked(trial)
    settings = SweepStepSettings.from_json(baked)
    assert settings == trial.launch_settings(trial.config, "model")
    assert settings.to_json() == baked
    search = settings.search
    assert search == trial.settings
    assert search.params == (
        Param("depth", "integer", low=2, high=8, step=2),
        Param("lr", "loguniform", low=1e-4, high=1e-1, log=True),
        Param("momentum", "uniform", low=0.5, high=0.9, step=0.1),
        Param("opt", "categorical", values=("adam", "sgd")),
        Param("width", "grid", values=(64, 128)),
    )
    assert search.early_stopping == EarlyStopping(
        "medianstop", {"min_trials_required": 3, "start_step": 2}
    )
    assert (search.max_failed_trials, search.seed, search.metrics) == (1, 3, ("loss",))
    assert settings.model_param == "model" and settings.train is None
    assert settings.job().env == {"A": "1"} and settings.job().world_size == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        search.max_trials = 5  # type: ignore[misc]
    # What each Optuna trial process reads back is the same settings.
    assert SweepSettings.from_json(json.loads(json.dumps(search.to_json()))) == search


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_trialz": 3}, "unknown field(s) max_trialz"),
        ({"max_trials": "3"}, "max_trials must be a whole number >= 1 (got '3')"),
        ({"parallel_trials": True}, "parallel_trials must be a whole number >= 1"),
        ({"max_failed_trials": -1}, "max_failed_trials must be a whole number >= 0"),
        ({"seed": 1.5}, "seed must be a whole number >= 0"),
        ({"goal": "max"}, "goal must be one of maximize, minimize"),
        ({"algorithm": "hyperband"}, "algorithm must be one of random, grid"),
        ({"objective": ""}, "objective must be a non-empty string"),
        ({"metrics": "loss"}, "metrics must be a list of strings"),
        ({"space": {}}, "space must be a non-empty object of parameters"),
        ({"space": {"x": {"type": "normal"}}}, "space['x']: type must be one of uniform"),
        (
            {"space": {"x": {"type": "uniform", "low": 0, "high": 1, "log": True}}},
            "space['x']: unknown field(s) log",
        ),
        (
            {"space": {"x": {"type": "uniform", "low": "0", "high": 1}}},
            "space['x']: low must be a number",
        ),
        (
            {"space": {"x": {"type": "integer", "low": 0.5, "high": 3, "step": 1}}},
            "space['x']: low must be a whole number",
        ),
        (
            {"space": {"x": {"type": "grid", "values": []}}},
            "space['x']: values must be a non-empty list",
        ),
        (
            {"early_stopping": {"algorithm": "medianstop", "settings": {"patience": 2}}},
            "early_stopping settings: unknown field(s) patience",
        ),
        ({"early_stopping": {"algorithm": "hyperband"}}, "early_stopping: algorithm must be"),
        ({"step": None}, "step must be a non-empty string"),
        ({"model_param": 3}, "model_param must be a string or null"),
        ({"trial": {"env": {}, "nodes": 2}}, "trial: unknown field(s) nodes"),
    ],
)
def test_the_launcher_refuses_settings_it_does_not_know(
    change: dict[str, Any], message: str
) -> None:
    good = _baked(small)
    bad = json.dumps({**good, **change})
    with pytest.raises(SettingsError, match="^sweep settings: " + re.escape(message)) as e:
        launch(function_source(small.fn), "small", bad, {})
    assert "\n" not in str(e.value) and str(e.value).endswith(
        "rebuild the component with the workbench-dsl version that runs it"
    )


def test_the_prebuilt_components_parameters_build_the_same_type() -> None:
    s = SweepSettings.from_parameters(
        space={"lr": {"type": "loguniform", "low": 0.001, "high": 0.1}},
        objective="acc",
        max_failed_trials=-1,
        early_stopping="medianstop",
        seed=-1,
    )
    assert (s.goal, s.algorithm, s.max_trials, s.parallel_trials) == ("maximize", "tpe", 20, 2)
    assert s.max_failed_trials is None and s.seed is None and s.metrics is None
    assert s.early_stopping == EarlyStopping("medianstop", {})
    # They are the user's arguments: the refusal says what is wrong, not "rebuild".
    with pytest.raises(ValueError, match=r"^sweep settings: max_trials must be .* \(got '5'\)$"):
        SweepSettings.from_parameters(
            space={"x": {"type": "uniform", "low": 0, "high": 1}},
            objective="a",
            max_trials="5",  # type: ignore[arg-type]
        )
