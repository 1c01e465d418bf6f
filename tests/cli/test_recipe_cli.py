"""`workbench recipe list | show | run`: discovery, project overrides, and the train-deploy
recipe end to end (sweep -> train -> gate/register -> approval -> canary deploy -> smoke test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_the_built_in_recipes() -> None:
    code, out, _ = invoke("recipe", "list", "--json")
    assert code == 0
    recipes = {r["name"]: r for r in json.loads(out)}
    assert {"train-deploy", "sweep-register", "retrain-on-drift"} <= set(recipes)
    assert recipes["train-deploy"]["builtin"] is True
    assert recipes["retrain-on-drift"]["summary"].startswith("Retrain on drift: ")
    assert recipes["train-deploy"]["summary"].startswith("Train and deploy")


def test_a_project_recipe_replaces_the_built_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "workbench.toml").write_text("")
    (tmp_path / "recipes").mkdir()
    source = (REPO / "recipes" / "train_deploy.py").read_text()
    first_line = source.index("\n")
    edited = '"""My own train and deploy.' + source[first_line:]
    (tmp_path / "recipes" / "train_deploy.py").write_text(edited)
    monkeypatch.chdir(tmp_path)
    code, out, _ = invoke("recipe", "list")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("train-deploy"))
    assert "My own train and deploy." in line and "(project)" in line


def test_show_lists_parameters_and_steps_in_order() -> None:
    code, out, _ = invoke("recipe", "show", "train-deploy", "--json")
    assert code == 0
    info = json.loads(out)
    assert {p["name"]: p["default"] for p in info["parameters"]} == {
        "seed": 0,
        "test_size": 0.25,
        "top_k": 10,
    }
    steps = info["steps"]
    assert steps.index("tune") < steps.index("fit") < steps.index("evaluate")
    assert steps.index("evaluate") < steps.index("predict") < steps.index("smoke-test")


def test_unknown_recipe_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "recipe", "run", "train-delpoy"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown recipe 'train-delpoy' (known: retrain-on-drift, sweep-register, "
        "train-deploy); "
        "`workbench recipe list` shows them"
    ]


def _recipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "recipe", "run", "train-deploy", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_deploy_runs_end_to_end_then_from_cache(workbench_home: Path) -> None:
    from workbench_dsl.backends.deployer import local_deployer
    from workbench_dsl.backends.registry import open_registry

    try:
        first = _recipe(workbench_home, "--approve", "--json")
        assert first.returncode == 0, first.stderr
        summary = json.loads(first.stdout)
        assert summary["status"] == "SUCCEEDED"
        assert "approved cancer-classifier version 1 (--approve)" in first.stderr
        outputs = summary["outputs"]
        assert outputs["model_uri"] == "models:/cancer-classifier/1"
        assert outputs["curl"].startswith("curl -s ")
        # approved from outside the run: production points at the version
        registry = open_registry()
        assert registry.resolve("models:/cancer-classifier@production").version == "1"
        # the endpoint outlives the run and answers the smoke test's request
        body = outputs["curl"].split(" -d '", 1)[1].rsplit("' ", 1)[0]
        request = urllib.request.Request(
            outputs["endpoint_url"],
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert 0.0 <= answer["outputs"][0]["data"][0] <= 1.0

        second = _recipe(workbench_home, "--approve", "--json")
        assert second.returncode == 0, second.stderr
        cached = [t["name"] for t in json.loads(second.stdout)["tasks"] if t["cached"]]
        assert {"load-data", "select-features", "tune", "fit", "evaluate"} <= set(cached)
    finally:
        local_deployer().stop_all()


def test_only_a_recipe_with_setup_is_set_up_and_its_trigger_is_kept_or_refused(
    workbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from workbench_dsl.cli._recipe_setup import _ensure_trigger, setup_of
    from workbench_dsl.errors import UsageError
    from workbench_dsl.recipes import get_recipe
    from workbench_dsl.schedule.events import parse_event
    from workbench_dsl.schedule.trigger_store import Trigger, TriggerStore

    assert setup_of(get_recipe("train-deploy")) is None
    recipe = get_recipe("retrain-on-drift")
    setup = setup_of(recipe)
    assert setup is not None and setup.on == "drift:cancer-classifier"
    assert setup.requires_recipe == "train-deploy" and setup.trigger == "retrain-on-drift"

    now = time.time()
    store = TriggerStore(workbench_home / "runs.db")
    store.add_trigger(
        Trigger(
            name="retrain-on-drift",
            id="",
            pipeline=str(recipe.path),
            workdir=str(workbench_home),
            params={"demo_shift": "0.5"},
            event=parse_event(setup.on),
            event_param=None,
            max_age_s=None,
            max_catchup=5,
            max_concurrency=1,
            paused=False,
            experiment="Default",
            created_at=now,
            updated_at=now,
            after=now,
        )
    )
    store.close()
    kept, added = _ensure_trigger(recipe, setup, {"demo_shift": "0.5"})
    assert added is False and kept["params"] == {"demo_shift": "0.5"}
    with pytest.raises(UsageError, match=r"already exists with other settings: parameters"):
        _ensure_trigger(recipe, setup, {"demo_shift": "0.9"})
