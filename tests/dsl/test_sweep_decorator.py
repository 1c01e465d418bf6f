"""``@sweep``: settings validated at decoration, the launcher's interface, sweeping a ``@train`` step."""

from __future__ import annotations

from typing import Any

import pytest

from workbench_dsl import Dataset, Input, Metrics, Model, Output, space, sweep, train
from workbench_dsl.backends.sweeper.base import EarlyStopping
from workbench_dsl.dsl.sweep import SweepStep
from workbench_dsl.errors import PipelineDefinitionError

SPACE = {"lr": space.loguniform(1e-4, 1e-1), "depth": space.integer(2, 8)}


@sweep(
    space=SPACE,
    objective="accuracy",
    max_trials=10,
    parallel_trials=3,
    early_stopping="medianstop",
    seed=1,
)
def trial(data: Input[Dataset], epochs: int, lr: float, depth: int, model: Output[Model]) -> dict:
    """One trial."""
    return {"accuracy": lr * depth}


def test_plain_function_and_settings() -> None:
    assert isinstance(trial, SweepStep)
    assert trial.fn(None, 1, 0.1, 3, None) == {"accuracy": pytest.approx(0.3)}
    assert trial.settings.early_stopping == EarlyStopping(
        "medianstop", {"min_trials_required": 3, "start_step": 4}
    )
    assert (trial.settings.algorithm, trial.settings.goal) == ("tpe", "maximize")


def test_launcher_interface_drops_searched_params_and_adds_outputs() -> None:
    spec = trial.component.component_spec
    assert sorted(spec.inputs) == ["data", "epochs"]
    assert sorted(spec.outputs) == ["best_model", "best_params", "best_value", "trials"]
    assert spec.outputs["best_params"].type == "Dict"
    assert spec.outputs["best_value"].type == "Float"
    assert spec.outputs["trials"].type == "system.Dataset@0.0.1"
    assert spec.outputs["best_model"].type == "system.Model@0.0.1"


def test_without_a_model_there_is_no_best_model() -> None:
    @sweep(space={"x": space.uniform(0, 1)}, objective="v")
    def f(x: float, scale: float = 2.0) -> dict:
        return {"v": x}

    assert sorted(f.component.component_spec.outputs) == ["best_params", "best_value", "trials"]
    assert f.component.component_spec.inputs["scale"].default == 2.0


def _decorate(**kwargs: Any) -> None:
    options: dict[str, Any] = {"space": {"x": space.uniform(0, 1)}, "objective": "v", **kwargs}

    @sweep(**options)
    def f(x: float, k: str = "a") -> dict:
        return {"v": x}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"algorithm": "hyperopt"},
            "f: unknown algorithm 'hyperopt' (known: random, grid, tpe, multivariate-tpe, cmaes, sobol, bayesianoptimization)",
        ),
        ({"goal": "max"}, "f: goal must be 'maximize' or 'minimize' (got 'max')"),
        ({"objective": ""}, "f: objective must name a metric the trial returns (got '')"),
        ({"max_trials": 0}, "f: max_trials must be a whole number >= 1 (got 0)"),
        ({"parallel_trials": 1.5}, "f: parallel_trials must be a whole number >= 1 (got 1.5)"),
        ({"max_failed_trials": -1}, "f: max_failed_trials must be a whole number >= 0 (got -1)"),
        ({"seed": "7"}, "f: seed must be a whole number >= 0 (got '7')"),
        (
            {"space": {}},
            "f: space must be a non-empty dict such as {'lr': space.loguniform(1e-4, 1e-1)} (got {})",
        ),
        (
            {"space": {"x": 0.1}},
            "f: space['x'] must be space.uniform(...), loguniform(...), integer(...), categorical([...]) or grid([...]) (got 0.1)",
        ),
        (
            {"space": {"y": space.uniform(0, 1)}},
            "f: space names 'y', which is not a parameter of f() (parameters: x, k)",
        ),
        (
            {"algorithm": "grid"},
            "f: algorithm='grid' needs a finite set of values, but space['x'] is continuous; give uniform(..., step=...) or use space.grid([...])",
        ),
        (
            {
                "algorithm": "cmaes",
                "space": {"x": space.uniform(0, 1), "k": space.categorical(["a"])},
            },
            "f: algorithm='cmaes' searches numeric ranges only, but space['k'] is a list of values",
        ),
        (
            {"early_stopping": "hyperband"},
            "f: early_stopping='hyperband' is not offered: Katib has no hyperband early-stopping rule (its hyperband is a search algorithm over a resource parameter), so it could not run the same way on a cluster; use 'medianstop'",
        ),
        (
            {"early_stopping": "patience"},
            "f: unknown early_stopping 'patience' (known: medianstop)",
        ),
        (
            {"early_stopping": {"algorithm": "medianstop", "warmup": 2}},
            "f: unknown medianstop setting 'warmup' (known: min_trials_required, start_step)",
        ),
        (
            {"early_stopping": {"algorithm": "medianstop", "start_step": 0}},
            "f: early_stopping start_step must be a whole number >= 1 (got 0)",
        ),
    ],
)
def test_bad_settings_fail_at_decoration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        _decorate(**kwargs)
    assert str(info.value) == message


def test_grid_accepts_stepped_and_listed_values() -> None:
    _decorate(
        algorithm="grid", space={"x": space.uniform(0, 1, step=0.5), "k": space.grid(["a", "b"])}
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def f(x: float, report: Output[Metrics]) -> dict",
            r"may write one Output\[Model\] .*'report' is another output",
        ),
        ("def f(x: Input[Dataset]) -> dict", r"searched parameter 'x' is an artifact"),
        ("def f(x: float) -> float", r"must return a dict of metrics such as \{'v': 0.93\}"),
        (
            "def f(x: float, trials: int) -> dict",
            r"parameter 'trials' clashes with the sweep's output",
        ),
    ],
)
def test_bad_trial_signatures_are_refused_when_built(
    source: str, message: str, tmp_path: Any
) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from workbench_dsl import Dataset, Input, Metrics, Output, space, sweep\n"
        "@sweep(space={'x': space.uniform(0, 1)}, objective='v')\n"
        f"{source}:\n    return {{'v': 1.0}}\n",
        encoding="utf-8",
    )
    from workbench_dsl.compile.loader import import_module

    step = import_module(str(module)).f
    with pytest.raises(PipelineDefinitionError, match=message):
        step.component  # noqa: B018


def test_sweeping_a_train_step_keeps_its_job_shape() -> None:
    @train(nodes=2, procs_per_node=2, profile="gpu-1")
    def fit(lr: float, model: Output[Model]) -> dict:
        return {"loss": lr}

    swept = sweep(space={"lr": space.uniform(0.0, 1.0)}, objective="loss", goal="minimize")(fit)
    assert swept.fn is fit.fn and swept.train is fit
    job = swept.launch_settings(swept.config, "model").train
    assert job is not None and (job.nodes, job.procs_per_node) == (2, 2)
    assert job.cluster.resources.accelerator == "nvidia.com/gpu"
    assert sorted(swept.component.component_spec.outputs) == [
        "best_model",
        "best_params",
        "best_value",
        "trials",
    ]


def test_sweep_refuses_other_step_kinds() -> None:
    from workbench_dsl import develop

    @develop
    def prep(x: float) -> float:
        return x

    with pytest.raises(
        PipelineDefinitionError,
        match="@sweep goes on a plain function or a @train step, not on a @develop step",
    ):
        sweep(space={"x": space.uniform(0, 1)}, objective="v")(prep)
