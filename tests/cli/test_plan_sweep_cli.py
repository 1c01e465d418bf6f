"""`workbench plan` of the prebuilt sweep component: its search arguments are checked like @sweep's."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_plan_refuses_a_prebuilt_sweeps_bad_search_in_one_line(tmp_path: Path) -> None:
    mod = tmp_path / "plain_bad.py"
    mod.write_text(
        textwrap.dedent(
            f"""
            from kfp import components, dsl

            sweep = components.load_component_from_file({str(REPO / "components/sweep.yaml")!r})
            SRC = "def fit(lr: float = 0.1) -> dict:\\n    return {{'acc': lr}}\\n"

            @dsl.pipeline(name="plain-bad")
            def plain_bad():
                sweep(function_source=SRC, function_name="fit", objective="acc",
                      space={{"lr": {{"type": "normal", "low": 0.1, "high": 0.2}}}})
            """
        ),
        encoding="utf-8",
    )
    r = runner.invoke(app, ["plan", f"{mod}:plain_bad"])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and "space['lr']: type must be one of uniform" in line
    assert "rebuild" not in line and "Traceback" not in line
