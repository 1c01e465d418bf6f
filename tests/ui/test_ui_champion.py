"""The champion comparison a ``@register(beats_champion=...)`` step recorded, where versions are
shown: ``workbench models show`` (text and ``--json``) and the dashboard's model page."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner
from ui_helpers import PORT, TOKEN, XSS, make_client

from workbench_dsl.backends.registry import open_registry
from workbench_dsl.cli.app import app
from workbench_dsl.paths import LocalRoot


def _registry_with_a_verdict(home: Path, tmp_path: Path) -> None:
    registry = open_registry(root=LocalRoot(home))
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    verdicts = [
        {"workbench.champion.verdict": "no-champion", "workbench.champion.alias": "production"},
        {
            "workbench.champion.verdict": "passed",
            "workbench.champion.alias": "production",
            "workbench.champion.version": "1",
            "workbench.champion.margins": '{"accuracy":">= 0.01"}',
            "workbench.champion.metrics": '{"accuracy":0.81}',
            "workbench.challenger.metrics": '{"accuracy":0.93}',
            "workbench.champion.summary": f"beats champion version 1 (@production): {XSS}",
        },
    ]
    for i, tags in enumerate(verdicts):
        run = registry.log_evaluation(
            experiment="churn", run_name=f"e{i}", tags={}, params={}, metrics={"accuracy": 0.9}
        )
        registry.register(name="churn", model=str(model), flavor="pyfunc", run_id=run, tags=tags)


def test_models_show_and_the_model_page_show_the_verdict(
    workbench_home: Path, tmp_path: Path
) -> None:
    _registry_with_a_verdict(workbench_home, tmp_path)
    result = CliRunner().invoke(app, ["models", "show", "churn"])
    assert result.exit_code == 0, result.output
    assert f"vs champion: beats champion version 1 (@production): {XSS}" in result.stdout
    result = CliRunner().invoke(app, ["models", "show", "churn", "--json"])
    by_version = {v["version"]: v for v in json.loads(result.stdout)["versions"]}
    assert by_version["2"]["champion"] == {
        "verdict": "passed",
        "alias": "production",
        "version": "1",
        "margins": {"accuracy": ">= 0.01"},
        "champion_metrics": {"accuracy": 0.81},
        "challenger_metrics": {"accuracy": 0.93},
        "summary": f"beats champion version 1 (@production): {XSS}",
    }
    assert by_version["1"]["champion"]["verdict"] == "no-champion"

    c = make_client(workbench_home)
    c.cookies.set(f"workbench_ui_token_{PORT}", TOKEN)
    page = c.get("/models/churn").text
    assert '<span class="badge passed">passed</span>' in page
    assert "v1 @production · accuracy 0.81 → 0.93" in page
    assert "no champion @production" in page
    assert XSS not in page
