"""A WORKBENCH_HOME that cannot be the local root (a file, a path that cannot be created):
one line that names it, exit 2, for any command that opens the root."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize("args", [["runs", "list"], ["secrets", "list"], ["schedule", "list"]])
@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_a_home_that_cannot_be_a_directory_is_bad_input(
    args: list[str], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    home = tmp_path / "notes.txt" if kind == "file" else tmp_path / "notes.txt" / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: cannot use {home} as the local root"), lines[0]
    assert "WORKBENCH_HOME" in lines[0]
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
