"""What Katib or KServe would refuse (or run differently) is refused when the step is built.

Each refusal names the file and line of the step, and cites the upstream rule.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl import space, sweep
from workbench_dsl.errors import PipelineDefinitionError

HERE = Path(__file__).name


def _sweep(space_: dict[str, Any], **kwargs: Any) -> Any:
    options: dict[str, Any] = {"objective": "v", **kwargs}

    def f(x: float = 0.0, y: float = 0.0, k: int = 0) -> dict:
        return {"v": x}

    return sweep(space=space_, **options)(f)


@pytest.mark.parametrize(
    ("space_", "kwargs", "words"),
    [
        # goptuna's CMA-ES refuses a one-dimensional space.
        ({"x": space.uniform(0, 1)}, {"algorithm": "cmaes"}, "two or more numeric"),
        # goptuna ignores log scales: Katib would sample uniformly.
        (
            {"x": space.loguniform(1e-3, 1), "y": space.uniform(0, 1)},
            {"algorithm": "cmaes"},
            "ignores log scales",
        ),
        ({"x": space.loguniform(1e-3, 1)}, {"algorithm": "sobol"}, "ignores log scales"),
        ({"k": space.integer(1, 64, log=True)}, {"algorithm": "sobol"}, "ignores log scales"),
        # scikit-optimize samples every float log-uniformly.
        ({"x": space.uniform(0, 1)}, {"algorithm": "bayesianoptimization"}, "log-uniformly"),
        (
            {"k": space.integer(0, 10, step=2)},
            {"algorithm": "bayesianoptimization"},
            "integer steps",
        ),
        # Katib's stdout collector reads names matching [\w|-]+.
        ({"x": space.uniform(0, 1)}, {"objective": "val.acc"}, "'val_acc'"),
        ({"x": space.uniform(0, 1)}, {"objective": "val/loss"}, "'val_loss'"),
        ({"x": space.uniform(0, 1)}, {"metrics": ["f1 score"]}, "cannot be collected"),
        ({"x": space.uniform(0, 1)}, {"metrics": "f1"}, "list of metric names"),
    ],
)
def test_sweeps_katib_would_refuse_or_run_differently(
    space_: dict[str, Any], kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        _sweep(space_, **kwargs)
    message = str(info.value)
    assert words in message
    assert f"{HERE}:" in message and "\n" not in message


def test_sweeps_katib_runs_the_same_way_are_accepted() -> None:
    ok = _sweep(
        {"x": space.uniform(0, 1), "y": space.uniform(-1, 1, step=0.5)},
        algorithm="cmaes",
        metrics=["v", "loss", "f1|macro"],
    )
    # The objective is never declared twice (Katib refuses it in additionalMetricNames).
    assert ok.settings.metrics == ("loss", "f1|macro")
    assert _sweep({"x": space.loguniform(1e-3, 1)}, algorithm="bayesianoptimization")


def _serve_module(tmp_path: Path, mode: str, options: str) -> Path:
    (tmp_path / "workbench.toml").write_text(
        f'[cluster]\nkserve_deployment_mode = "{mode}"\n', encoding="utf-8"
    )
    path = tmp_path / "served_mode.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from workbench_dsl import serve

            @serve(endpoint="e", {options})
            def predict(model, instances):
                return instances
            """
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("mode", "options", "words"),
    [
        ("Standard", "canary_percent=10", "canary_percent=10 needs KServe's Knative mode"),
        ("Standard", "canary_percent=100, min_replicas=0", "min_replicas=0 (scale to zero)"),
        ("Serverless", "canary_percent=100", "must be one of Knative, Standard"),
    ],
)
def test_serve_options_the_kserve_mode_cannot_do_fail_at_compile(
    tmp_path: Path, mode: str, options: str, words: str
) -> None:
    from workbench_dsl.compile.loader import import_module

    module = import_module(str(_serve_module(tmp_path, mode, options)))
    with pytest.raises(PipelineDefinitionError) as info:
        module.predict.component  # noqa: B018 -- building the component runs the checks
    assert words in str(info.value)
    assert "served_mode.py:" in str(info.value)


def test_standard_mode_with_one_revision_compiles(tmp_path: Path) -> None:
    from workbench_dsl.compile.loader import import_module

    path = _serve_module(tmp_path, "Standard", "canary_percent=100, min_replicas=1")
    module = import_module(str(path))
    assert module.predict.component is not None


def test_train_env_that_torchrun_reserves_is_refused_where_written() -> None:
    from workbench_dsl import train

    def fit(lr: float) -> float:
        return lr

    with pytest.raises(PipelineDefinitionError) as info:
        train(nodes=2, env={"PET_NNODES": "3", "OK": "1"})(fit)
    assert "PET_NNODES" in str(info.value) and f"{HERE}:" in str(info.value)
    assert train(runtime="plain-python", env={"PET_NNODES": "3"})(fit)  # not torchrun
