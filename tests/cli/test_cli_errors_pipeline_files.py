"""A PIPELINE argument that is not a pipeline: one error line, exit 2, nothing written.

Every command that takes PIPELINE reads it through the same functions, so a file
of binary junk, a Python file that is not source, or YAML given to `compile`
reads the same everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()

OK = """\
from workbench_dsl import develop, pipeline


@develop
def add(a: int) -> int:
    return a + 1


@pipeline(name="okpipe")
def okpipe(a: int = 1):
    add(a=a)
"""

#: (the command, what follows PIPELINE)
COMMANDS = [
    (["run"], []),
    (["plan"], []),
    (["submit"], ["--host", "http://127.0.0.1:9"]),
    (["schedule", "add"], ["--cron", "0 3 * * 0"]),
    (["trigger", "add"], ["--on", "dataset:data/*.csv"]),
]


def one_error_line(r: object) -> str:
    lines = r.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, r.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ") and "internal error" not in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    junk = bytes(range(256)) * 2
    (tmp_path / "junk.yaml").write_bytes(junk)
    (tmp_path / "junk.py").write_bytes(junk)
    (tmp_path / "ok.py").write_text(OK)
    return tmp_path


@pytest.mark.parametrize(("command", "options"), COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_binary_junk_as_compiled_pipeline_is_bad_input(
    here: Path, command: list[str], options: list[str]
) -> None:
    r = runner.invoke(app, [*command, "junk.yaml", *options])
    assert r.exit_code == 2
    assert "junk.yaml is not a compiled pipeline: it is not UTF-8 text" in one_error_line(r)
    assert r.stdout == ""


@pytest.mark.parametrize("name", ["junk.yaml", "junk.py"])
def test_compile_of_junk_says_what_it_is(here: Path, name: str) -> None:
    r = runner.invoke(app, ["compile", name])
    assert r.exit_code == 2
    line = one_error_line(r)
    assert "None" not in line and name in line
    assert sorted(os.listdir(here)) == ["junk.py", "junk.yaml", "ok.py"]


def test_compile_of_a_compiled_file_says_to_use_it_as_is(here: Path) -> None:
    assert runner.invoke(app, ["compile", "ok.py", "-o", "ok.yaml"]).exit_code == 0
    r = runner.invoke(app, ["compile", "ok.yaml"])
    assert r.exit_code == 2
    assert "ok.yaml is already a compiled pipeline" in one_error_line(r)


def test_compile_into_a_directory_is_bad_input_and_writes_nothing(here: Path) -> None:
    (here / "out").mkdir()
    r = runner.invoke(app, ["compile", "ok.py", "-o", "out"])
    assert r.exit_code == 2
    assert "-o out is a directory" in one_error_line(r)
    assert list((here / "out").iterdir()) == []
    assert sorted(os.listdir(here)) == ["junk.py", "junk.yaml", "ok.py", "out"]


@pytest.mark.parametrize("command", [["compile"], ["run"], ["plan"]], ids=" ".join)
def test_a_directory_as_pipeline_is_named_as_one(here: Path, command: list[str]) -> None:
    (here / "adir").mkdir()
    r = runner.invoke(app, [*command, "adir"])
    assert r.exit_code == 2
    assert "adir is a directory: give path/to/module.py" in one_error_line(r)


def test_trigger_output_into_a_directory_is_bad_input(here: Path) -> None:
    (here / "out").mkdir()
    args = ["trigger", "add", "ok.py", "--on", "run:up", "--target", "kfp", "--cron", "*/5 * * * *"]
    r = runner.invoke(app, [*args, "--output", "out"])
    assert r.exit_code == 2
    assert "--output out is a directory" in one_error_line(r)
    assert list((here / "out").iterdir()) == []
