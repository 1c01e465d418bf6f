"""docs/runbooks/stale-cache.md: a step reads a file it does not declare, so the cache serves
an old result; see it with `cache list`, get a fresh one with `--no-cache` or `cache clear`."""

from __future__ import annotations

import json
from pathlib import Path

from runbook_helpers import PIPELINES, runbook, wb, wb_json

PIPELINE = str(PIPELINES / "stale_cache.py")


def test_the_runbook_names_the_commands_used_here() -> None:
    text = runbook("stale-cache.md")
    for command in ("workbench cache list", "workbench cache clear", "--no-cache"):
        assert command in text


def test_a_stale_hit_is_seen_and_cleared(tmp_path: Path) -> None:
    table = tmp_path / "table.txt"
    table.write_text("a b\n")
    first = wb_json("run", PIPELINE, "-p", f"path={table}")
    assert first["outputs"]["Output"] == 2

    # the symptom: the file changed, the result did not
    table.write_text("a b c d\n")
    stale = wb_json("run", PIPELINE, "-p", f"path={table}")
    assert stale["outputs"]["Output"] == 2
    assert [t["cached"] for t in stale["tasks"]] == [True]
    entries = wb_json("cache", "list")
    assert [(e["task"], e["run_id"], e["hits"]) for e in entries] == [
        ("count-rows", first["run_id"], 1)
    ]

    # one run without the cache ...
    fresh = wb_json("run", PIPELINE, "-p", f"path={table}", "--no-cache")
    assert fresh["outputs"]["Output"] == 4 and [t["cached"] for t in fresh["tasks"]] == [False]
    # ... or forget every cached result
    assert wb_json("cache", "clear")["cleared"] >= 1
    assert wb_json("cache", "list") == []
    table.write_text("a\n")
    after = wb("run", PIPELINE, "-p", f"path={table}", "--json")
    assert json.loads(after.stdout)["outputs"]["Output"] == 1
