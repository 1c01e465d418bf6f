"""`workbench init [DIR] [--name NAME]`: a new project whose pipeline and test work at once,
and that never overwrites a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

REPO = Path(__file__).resolve().parents[2]
FILES = [
    "workbench.toml",
    "pipelines/churn_demo.py",
    "tests/test_churn_demo.py",
    "conftest.py",
    ".gitignore",
    "README.md",
]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_init_writes_the_project_and_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("init", "churn-demo")
    assert code == 0, err
    project = tmp_path / "churn-demo"
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == sorted(
        FILES
    )
    assert "cd churn-demo\n  workbench run pipelines/churn_demo.py" in out
    config = (project / "workbench.toml").read_text()
    assert tomllib.loads(config)["defaults"] == {"profile": "cpu-small", "preset": "python"}
    assert "# [profiles.gpu-a100]" in config and "# [presets.data]" in config
    assert ".workbench/" in (project / ".gitignore").read_text().splitlines()
    readme = (project / "README.md").read_text()
    for command in (
        "workbench run pipelines/churn_demo.py",
        "python -m pytest tests",
        "workbench compile pipelines/churn_demo.py -o churn_demo.yaml",
    ):
        assert command in readme
    source = (project / "pipelines" / "churn_demo.py").read_text()
    for decorator in ("@develop(", "@register(", "@serve(", '@pipeline(name="churn-demo")'):
        assert decorator in source


def test_the_generated_code_passes_the_linter(tmp_path: Path) -> None:
    code, _, err = invoke("init", str(tmp_path), "--name", "Lint_Me")
    assert code == 0, err
    # our own rules, run from the project's folder as its author would
    rules = ["--isolated", "--no-cache", "--line-length", "100"]
    for command in (["check", "--select", "E,F,W,I,B,UP,SIM,RUF"], ["format", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *rules, "."],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "pipelines" / "lint_me.py").is_file()


def test_the_generated_pipeline_compiles_and_its_step_test_passes(tmp_path: Path) -> None:
    code, _, err = invoke("init", str(tmp_path / "iris"))
    assert code == 0, err
    project = tmp_path / "iris"
    code, out, err = invoke("compile", str(project / "pipelines" / "iris.py"), "-o", "-")
    assert code == 0, err
    assert out.startswith("# PIPELINE DEFINITION\n# Name: iris\n")
    # the step-level test runs here; the whole pipeline runs in tests/packaging (from the wheel)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "plain_functions"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed, 1 deselected" in proc.stdout


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "init", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'README.md'} exists: `workbench init` never overwrites a file; "
        "choose another directory or move it away"
    ]
    assert (tmp_path / "README.md").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_init_in_the_current_directory_takes_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "My_Project"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, err = invoke("init", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["name"] == "my-project"
    assert str(here / "pipelines" / "my_project.py") in info["files"]
    assert 'endpoint="my-project"' in (here / "pipelines" / "my_project.py").read_text()


@pytest.mark.parametrize("name", ["1abc", "has space", "dots.in.it", ""])
def test_a_bad_name_is_exit_2_and_writes_nothing(tmp_path: Path, name: str) -> None:
    code, _, err = invoke("init", str(tmp_path / "p"), "--name", name)
    assert code == 2
    assert err.startswith(f"error: project name {name!r} must start with a letter")
    assert not (tmp_path / "p").exists()


def test_a_file_as_the_directory_is_named_as_one_before_its_name_is_checked(
    tmp_path: Path,
) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    code, out, err = invoke("init", str(tmp_path / "notes.txt"))
    assert code == 2 and out == ""
    assert (
        err
        == f"error: {tmp_path / 'notes.txt'} exists and is not a directory; choose another directory\n"
    )
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_directory_that_cannot_be_created_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root ignores the mode: then a folder no one can create
    writable = os.access(locked, os.W_OK)
    target = Path("/proc/no-such-dir/project") if writable else locked / "project"
    code, out, err = invoke("init", str(target))
    assert code == 2 and out == ""
    assert (
        err.startswith(f"error: cannot create the project in {target}: ") and err.count("\n") == 1
    )
    assert not target.exists()
