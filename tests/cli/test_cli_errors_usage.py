"""Errors the option parser finds (a missing argument, an unknown option, a value out of range)
are one line on stderr with the command's --help, exit 2, as every other bad input is."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["compile"], "missing argument 'PIPELINE'"),
        (["run", "x.py", "--nosuch"], "no such option: --nosuch"),
        (["nosuchcmd"], "no such command 'nosuchcmd'"),
        (["runs", "show", "r", "--limit", "-1"], "invalid value for '--limit'"),
        (["endpoints", "drift", "e", "--p-value", "2"], "invalid value for '--p-value'"),
        (["ui", "--port", "70000"], "invalid value for '--port'"),
        (["runs", "cancel", "r", "--wait", "-1"], "invalid value for '--wait'"),
    ],
)
def test_parser_errors_are_one_line_with_the_help_command(args: list[str], says: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {says}"), lines[0]
    assert lines[0].endswith(" --help)"), lines[0]


def test_no_arguments_still_shows_the_help() -> None:
    r = runner.invoke(app, ["runs"])
    assert r.exit_code == 2
    assert "list" in r.output and "show" in r.output and "error:" not in r.output


def test_every_argument_and_option_has_help() -> None:
    import typer.main

    missing = []

    def walk(cmd: object, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        if not hasattr(cmd, "commands"):
            for p in cmd.params:  # type: ignore[attr-defined]
                if not p.help:
                    missing.append(f"{' '.join(path)} {p.opts[0]}")

    walk(typer.main.get_command(app), ["workbench"])
    assert missing == []


def test_every_command_summary_is_one_line() -> None:
    """The first paragraph is what `--help` lists beside the command: a hard line break
    there shows up as a broken line in the listing."""
    import typer.main

    broken = []

    def walk(cmd: object, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            summary = (sub.help or "").strip().split("\n\n")[0]
            if "\n" in summary:
                broken.append(" ".join([*path, name]))
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), ["workbench"])
    assert broken == []
