"""Every command is in the README's command table and in docs/*.md."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from workbench_dsl.cli.app import app

REPO = Path(__file__).resolve().parents[2]


def top_level_commands() -> list[str]:
    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_in_the_readme_command_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`workbench ([a-z]+)", table))
    assert [c for c in top_level_commands() if c not in listed] == []


def test_every_command_is_in_the_docs() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "docs").rglob("*.md"))
    assert [c for c in top_level_commands() if f"workbench {c}" not in docs] == []
