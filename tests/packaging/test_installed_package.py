"""The installed package is the product: what the sdist and the wheel hold, and what a fresh
venv with only the wheel can do outside any checkout (help, recipes, components, a small
pipeline, ``workbench init`` then ``run`` and the generated test, a recipe end to end)."""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from wheel_env import REPO, Dist, Installed

# The fresh venv is made inside the first test that needs it (minutes on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

SHIPPED_RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.py"))
SHIPPED_COMPONENTS = sorted(p.name for p in (REPO / "components").glob("*.yaml"))


def test_the_sdist_holds_the_recipes_and_the_components(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in tar.getnames()}
    assert {f"recipes/{n}" for n in SHIPPED_RECIPES} <= names
    assert {f"components/{n}" for n in SHIPPED_COMPONENTS} <= names
    # the components' sources too: the sdist can rebuild them
    assert {"components/build.py", "setup.py", "MANIFEST.in"} <= names
    assert {f"components/src/{p.name}" for p in (REPO / "components" / "src").glob("*.py")} <= names


def test_the_wheel_ships_them_inside_the_package_byte_for_byte(dist: Dist) -> None:
    assert SHIPPED_RECIPES and SHIPPED_COMPONENTS
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        for folder, inside, files in (
            ("recipes", "_recipes", SHIPPED_RECIPES),
            ("components", "_components", SHIPPED_COMPONENTS),
        ):
            for name in files:
                member = f"workbench_dsl/{inside}/{name}"
                assert member in names, f"{member} is not in the wheel"
                assert whl.read(member) == (REPO / folder / name).read_bytes()
    assert "workbench_dsl/_templates/init/pipeline.py.tmpl" in names
    # nothing lands at the top level of site-packages
    assert {n.split("/")[0] for n in names} == {
        "workbench_dsl",
        dist.wheel.name.split("-")[0] + "-" + dist.wheel.name.split("-")[1] + ".dist-info",
    }


def test_the_venv_sees_the_installed_package_not_the_checkout(installed: Installed) -> None:
    probe = installed.run(
        "python",
        "-c",
        "import json, sys, workbench_dsl; print(json.dumps([workbench_dsl.__file__, sys.path]))",
    )
    assert probe.returncode == 0, probe.stderr
    location, path = json.loads(probe.stdout)
    assert Path(location).is_relative_to(installed.venv)
    assert not any(p and Path(p).resolve().is_relative_to(REPO) for p in path), path


def test_help_recipes_and_components_work_from_the_wheel(installed: Installed) -> None:
    help_ = installed.run("workbench", "--help")
    assert help_.returncode == 0, help_.stderr
    for command in ("init", "run", "recipe", "components"):
        assert command in help_.stdout

    listed = installed.run("workbench", "recipe", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    recipes = {r["name"]: r for r in json.loads(listed.stdout)}
    assert {"train-deploy", "sweep-register", "retrain-on-drift"} <= set(recipes)
    for r in recipes.values():
        assert r["builtin"] and Path(r["path"]).is_relative_to(installed.venv)

    comps = installed.run("workbench", "components", "list", "--json")
    assert comps.returncode == 0, comps.stderr
    paths = {c["name"]: c["path"] for c in json.loads(comps.stdout)}
    assert sorted(f"{n}.yaml" for n in paths) == SHIPPED_COMPONENTS
    train = installed.run("workbench", "components", "path", "train")
    assert train.stdout.strip() == paths["train"]
    # plain KFP loads what `components path` points at
    load = installed.run(
        "python",
        "-c",
        "import sys; from kfp import components; "
        "print(components.load_component_from_file(sys.argv[1]).name)",
        paths["train"],
    )
    assert load.returncode == 0, load.stderr
    assert load.stdout.strip() == "train"


def test_a_small_pipeline_runs_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    work = installed.home / "hello"
    work.mkdir()
    shutil.copy(Path(__file__).with_name("hello.py"), work / "hello.py")
    proc = installed.run(
        "workbench",
        "run",
        "hello.py",
        "-p",
        "count=5",
        "--json",
        cwd=work,
        WORKBENCH_HOME=str(tmp_path / "wb"),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "SUCCEEDED"
    assert summary["outputs"]["Output"] == 5


def test_init_then_run_then_the_generated_test(
    installed: Installed, tmp_path: Path, stop_endpoints
) -> None:
    made = installed.run("workbench", "init", "churn-demo")
    assert made.returncode == 0, made.stderr
    project = installed.home / "churn-demo"
    root = project / ".workbench"
    stop_endpoints(root)
    ran = installed.run("workbench", "run", "pipelines/churn_demo.py", "--json", cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "SUCCEEDED"
    assert (root / "runs.db").exists()  # the project's own local root, which .gitignore names
    assert ".workbench/" in (project / ".gitignore").read_text().splitlines()
    predicted = installed.run(
        "workbench",
        "endpoints",
        "predict",
        "churn-demo",
        "--data",
        "[[5.1, 3.5, 1.4, 0.2]]",
        "--json",
        cwd=project,
    )
    assert predicted.returncode == 0, predicted.stderr

    tested = installed.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "2 passed" in tested.stdout


def test_a_recipe_runs_end_to_end_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    proc = installed.run(
        "workbench",
        "recipe",
        "run",
        "sweep-register",
        "--json",
        WORKBENCH_HOME=str(tmp_path / "wb"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["status"] == "SUCCEEDED"
    assert summary["outputs"]["Output"] == "models:/wine-classifier/1"
