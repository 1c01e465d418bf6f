"""`workbench endpoints predict --data` that cannot be read or is not JSON: one line, exit 2,
said before any endpoint is looked up or called."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("@missing.json", "--data @missing.json: cannot read missing.json"),
        ("@folder", "--data @folder: cannot read folder"),
        ("@junk.bin", "--data @junk.bin: cannot read junk.bin"),
        ("@half.json", "--data is not JSON"),
        ("[[1, 2]", "--data is not JSON"),
    ],
)
def test_bad_data_is_one_line_before_the_endpoint_is_looked_up(
    data: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "junk.bin").write_bytes(b"\xff\xfe\x00junk")
    (tmp_path / "half.json").write_text('{"instances": [')
    r = runner.invoke(app, ["endpoints", "predict", "nosuch", "-d", data, "--json"])
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {says}"), r.stderr
