"""Katib's algorithm names map to the Optuna samplers and pruners of notes-katib-optuna.md."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from workbench_dsl.backends.sweeper import algorithms
from workbench_dsl.backends.sweeper.base import ALGORITHMS, Param, SweepSettings


def settings(algorithm: str, **extra: Any) -> SweepSettings:
    return SweepSettings.from_json(
        {
            "objective": "acc",
            "goal": "maximize",
            "algorithm": algorithm,
            "space": {"x": {"type": "uniform", "low": 0.0, "high": 1.0, "step": 0.5}},
            "max_trials": 3,
            "parallel_trials": 1,
            "seed": 3,
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("name", "cls", "check"),
    [
        ("random", optuna.samplers.RandomSampler, None),
        ("tpe", optuna.samplers.TPESampler, lambda s: s._constant_liar and not s._multivariate),
        ("multivariate-tpe", optuna.samplers.TPESampler, lambda s: s._multivariate),
        ("grid", optuna.samplers.GridSampler, lambda s: s._search_space == {"x": [0.0, 0.5, 1.0]}),
        ("sobol", optuna.samplers.QMCSampler, lambda s: s._qmc_type == "sobol"),
        ("bayesianoptimization", optuna.samplers.GPSampler, None),
    ],
)
def test_sampler_for_each_katib_name(name: str, cls: type, check: Any) -> None:
    if name == "bayesianoptimization":
        pytest.importorskip("torch")
    sampler = algorithms.sampler(settings(name))
    assert isinstance(sampler, cls)
    if check:
        assert check(sampler)


def test_every_algorithm_is_mapped() -> None:
    assert set(ALGORITHMS) == {
        "random",
        "grid",
        "tpe",
        "multivariate-tpe",
        "cmaes",
        "sobol",
        "bayesianoptimization",
    }


def test_cmaes_when_its_package_is_there() -> None:
    pytest.importorskip("cmaes")
    assert isinstance(algorithms.sampler(settings("cmaes")), optuna.samplers.CmaEsSampler)


def test_medianstop_maps_katib_settings_to_median_pruner() -> None:
    s = settings(
        "tpe",
        early_stopping={
            "algorithm": "medianstop",
            "settings": {"min_trials_required": 5, "start_step": 2},
        },
    )
    pruner = algorithms.pruner(s)
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_startup_trials == 5 and pruner._n_warmup_steps == 2
    assert isinstance(algorithms.pruner(settings("tpe")), optuna.pruners.NopPruner)


def test_katib_settings_carry_the_seed() -> None:
    assert algorithms.katib_algorithm_settings(settings("tpe")) == [("random_state", "3")]
    assert algorithms.katib_algorithm_settings(settings("grid")) == []


@pytest.mark.parametrize(
    ("spec", "text", "value"),
    [
        ({"type": "uniform", "low": 0, "high": 1}, "0.25", 0.25),
        ({"type": "integer", "low": 1, "high": 9}, "7", 7),
        ({"type": "categorical", "values": ["adam", "sgd"]}, "sgd", "sgd"),
        ({"type": "grid", "values": [1, 2.5, True]}, "2.5", 2.5),
        ({"type": "grid", "values": [1, 2.5, True]}, "True", True),
    ],
)
def test_katib_assignments_are_typed_back(spec: dict[str, Any], text: str, value: Any) -> None:
    got = Param.from_spec("p", spec).coerce(text)
    assert got == value and type(got) is type(value)
