"""``@register(beats_champion=...)``: the challenger against the version in production.

Each test runs the compiled component through KFP's own executor against a real
SQLite MLflow registry (the harness of test_register_runtime.py). The models are
scikit-learn regressors that predict one constant: the evaluation reads its
"accuracy" from the model, so each test sets exactly how good each version is.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from test_register_runtime import execute, home, mlflow_template

from workbench_dsl import Dataset, Input, Model, register
from workbench_dsl.backends.registry import open_registry
from workbench_dsl.errors import PipelineDefinitionError


def _model(path: Path, quality: float) -> Path:
    from sklearn.dummy import DummyRegressor

    with open(path, "wb") as f:
        pickle.dump(DummyRegressor(strategy="constant", constant=quality).fit([[0]], [0]), f)
    return path


def _data(path: Path) -> Path:
    path.write_text("x\n0\n", encoding="utf-8")
    return path


@register(
    model="churn",
    gate={"accuracy": ">= 0.5"},
    beats_champion={"accuracy": 0.02},
    promote_to="production",
)
def evaluate(model: Input[Model], data: Input[Dataset], calls: str) -> dict:
    import pickle

    with open(model.path, "rb") as f:
        quality = float(pickle.load(f).predict([[0]])[0])
    with open(calls, "a") as f:  # who was evaluated, on which data
        f.write(f"{model.metadata.get('workbench.role', 'challenger')} {data.path}\n")
    return {"accuracy": quality, "latency_ms": 100 * (1 - quality)}


@register(model="churn", beats_champion={"latency_ms": "<= -5"}, promote_to="production")
def faster(model: Input[Model], data: Input[Dataset], calls: str) -> dict:
    import pickle

    with open(model.path, "rb") as f:
        quality = float(pickle.load(f).predict([[0]])[0])
    return {"latency_ms": 100 * (1 - quality)}


def _run(step: object, tmp_path: Path, quality: float, n: int) -> dict:
    calls = tmp_path / "calls.txt"
    return execute(  # type: ignore[no-any-return]
        step,
        tmp_path / f"o{n}",
        {"calls": str(calls)},
        model=_model(tmp_path / f"m{n}.pkl", quality),
        data=_data(tmp_path / "holdout.csv"),
    )


def _calls(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "calls.txt").read_text().splitlines()
    (tmp_path / "calls.txt").unlink()
    return lines


def test_first_model_no_champion_then_a_better_one_beats_it(
    home: Path,
    tmp_path: Path,
) -> None:
    out = _run(evaluate, tmp_path, 0.80, 1)
    assert out == {"promoted": True, "version": "1", "model_uri": "models:/churn/1"}
    assert _calls(tmp_path) == [f"challenger {tmp_path / 'holdout.csv'}"]
    status = (home / "status").read_text()
    assert "no champion (churn@production is not set): the absolute gate alone decided" in status
    v1 = open_registry().get_version("churn", "1")
    assert v1.tags["workbench.champion.verdict"] == "no-champion"
    assert v1.aliases == ("production",)

    out = _run(evaluate, tmp_path, 0.85, 2)
    assert out["version"] == "2" and out["promoted"] is True
    # the champion was evaluated by the same function, on the same data
    holdout = tmp_path / "holdout.csv"
    assert _calls(tmp_path) == [f"challenger {holdout}", f"champion {holdout}"]
    v2 = open_registry().get_version("churn", "2")
    assert v2.aliases == ("production",)
    tags = v2.tags
    assert tags["workbench.champion.verdict"] == "passed"
    assert tags["workbench.champion.version"] == "1"
    assert tags["workbench.champion.alias"] == "production"
    assert json.loads(tags["workbench.champion.margins"]) == {"accuracy": ">= 0.02"}
    assert json.loads(tags["workbench.champion.metrics"])["accuracy"] == pytest.approx(0.80)
    assert json.loads(tags["workbench.challenger.metrics"])["accuracy"] == pytest.approx(0.85)
    assert "beats champion version 1 (@production): accuracy +0.05" in (home / "status").read_text()


def test_a_challenger_short_of_the_margin_is_not_registered(
    home: Path,
    tmp_path: Path,
) -> None:
    _run(evaluate, tmp_path, 0.80, 1)
    out = _run(evaluate, tmp_path, 0.81, 2)  # better, but by less than 0.02
    assert out == {"promoted": False, "version": "", "model_uri": ""}
    registry = open_registry()
    assert [v.version for v in registry.versions("churn")] == ["1"]
    assert registry.alias_version("churn", "production") == "1"
    status = (home / "status").read_text()
    assert status.startswith("gate failed: does not beat champion version 1 (@production): ")
    assert "accuracy +0.01 (needs >= +0.02)" in status
    # the evaluation run keeps both sets of metrics and the verdict
    runs = registry.client.search_runs(  # type: ignore[attr-defined]
        [registry.client.get_experiment_by_name("churn-train").experiment_id],  # type: ignore[attr-defined]
        filter_string="tags.`workbench.champion.verdict` = 'failed'",
    )
    assert len(runs) == 1
    assert json.loads(runs[0].data.tags["workbench.champion.metrics"])["accuracy"] == 0.8


def test_lower_is_better_margins(home: Path, tmp_path: Path) -> None:
    _run(faster, tmp_path, 0.50, 1)  # latency 50, no champion yet
    assert _run(faster, tmp_path, 0.53, 2)["promoted"] is False  # 47: only 3 lower
    assert "latency_ms -3 (needs <= -5)" in (home / "status").read_text()
    assert _run(faster, tmp_path, 0.40, 3)["promoted"] is False  # 60: higher is worse
    out = _run(faster, tmp_path, 0.60, 4)  # 40: 10 lower
    assert out["promoted"] is True
    assert open_registry().alias_version("churn", "production") == out["version"]


def test_the_champion_must_return_the_metrics_the_margins_name(
    home: Path,
    tmp_path: Path,
) -> None:
    from workbench_dsl.errors import JobFailed

    @register(model="churn", beats_champion={"auc": 0.0})
    def partial(model: Input[Model]) -> dict:
        return {"accuracy": 0.9}

    with pytest.raises(JobFailed, match=r"beats_champion names 'auc' but the challenger's"):
        execute(partial, tmp_path / "o", model=_model(tmp_path / "m.pkl", 0.9))
    assert open_registry().models() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beats_champion": {"accuracy": "== 0.1"}}, r"is not a margin; give a number"),
        ({"beats_champion": {"accuracy": True}}, r"must be a margin such as 0.01"),
        ({"beats_champion": ["accuracy"]}, r"beats_champion must be a dict"),
        ({"champion_alias": "prod"}, r"champion_alias is set but beats_champion is not"),
        (
            {"beats_champion": {"accuracy": 0.01}, "champion_alias": "latest"},
            r"champion_alias='latest' is not a valid alias",
        ),
    ],
)
def test_bad_champion_options_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):

        @register(model="m", **options)
        def ev(model: Input[Model]) -> dict:
            return {}


def test_champion_settings_travel_in_the_component_and_turn_the_cache_off() -> None:
    from workbench_dsl.runtime.register import RegisterSettings

    @register(model="m", beats_champion={"accuracy": 0.01, "loss": "< 0"}, promote_to="prod")
    def ev(model: Input[Model]) -> dict:
        return {}

    @register(model="m")
    def plain(model: Input[Model]) -> dict:
        return {}

    assert ev.options.cache is False and plain.options.cache is True
    assert ev.settings["beats_champion"] == {"accuracy": ">= 0.01", "loss": "< 0"}
    assert ev.settings["champion_alias"] == "prod"  # default: promote_to
    settings = RegisterSettings(**ev.settings)
    assert RegisterSettings.from_config(settings.to_json()) == settings
    # a step without a champion compiles as it did before
    assert "beats_champion" not in RegisterSettings(**plain.settings).to_json()


@register(model="churn", beats_champion={"accuracy": 0.0}, promote_to="production")
def from_folder(model: Input[Model]) -> dict:
    import os
    import pickle

    with open(os.path.join(model.path, "est.pkl"), "rb") as f:
        return {"accuracy": float(pickle.load(f).predict([[0]])[0])}


def test_a_champion_comes_in_the_challenger_s_layout(home: Path, tmp_path: Path) -> None:
    for n, quality in ((1, 0.7), (2, 0.8)):
        folder = tmp_path / f"m{n}"
        folder.mkdir()
        _model(folder / "est.pkl", quality)
        out = execute(from_folder, tmp_path / f"o{n}", model=folder)
        assert out["promoted"] is True
    tags = open_registry().get_version("churn", "2").tags
    assert tags["workbench.champion.verdict"] == "passed"
    assert json.loads(tags["workbench.champion.metrics"]) == {"accuracy": 0.7}
