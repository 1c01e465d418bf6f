"""docs/runbooks/endpoint-errors.md: after a canary rollout, some requests fail; find the
revision that fails and roll it back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from runbook_helpers import PIPELINES, runbook, wb, wb_json

pytestmark = pytest.mark.slow


def test_the_runbook_names_the_commands_used_here() -> None:
    text = runbook("endpoint-errors.md")
    for command in (
        "workbench endpoints show",
        "workbench endpoints predict",
        "workbench endpoints rollback",
        "server.log",
    ):
        assert command in text


def _predict_many(n: int) -> list[str]:
    answers = []
    for _ in range(n):
        proc = wb("endpoints", "predict", "runbook-canary", "--data", "[[0]]")
        # an answer prints the prediction, and on stderr the revision that served it
        answers.append(proc.stderr.strip().splitlines()[-1])
    return answers


def test_a_failing_canary_is_found_and_rolled_back(tmp_path: Path) -> None:
    source = (PIPELINES / "canary.py").read_text()
    broken = tmp_path / "canary.py"
    broken.write_text(
        source.replace(
            "return model.predict(instances).tolist()",
            'raise RuntimeError("feature 0 is missing")',
        )
    )
    try:
        assert wb_json("run", str(PIPELINES / "canary.py"))["status"] == "SUCCEEDED"
        assert wb_json("run", str(broken), "-p", "seed=1")["status"] == "SUCCEEDED"

        # the symptom: about half of the requests fail
        answers = _predict_many(4)
        assert "served by runbook-canary-predictor-00001" in answers
        assert any("HTTP 500: RuntimeError : feature 0 is missing" in a for a in answers)

        shown = wb_json("endpoints", "show", "runbook-canary")
        assert (shown["stable"], shown["canary"], shown["canary_percent"]) == (
            "runbook-canary-predictor-00001",
            "runbook-canary-predictor-00002",
            50,
        )
        log = Path(os.environ["WORKBENCH_HOME"]) / "endpoints" / "runbook-canary" / "server.log"
        assert "feature 0 is missing" in log.read_text()

        rolled = wb("endpoints", "rollback", "runbook-canary")
        assert rolled.returncode == 0, rolled.stderr
        assert _predict_many(4) == ["served by runbook-canary-predictor-00001"] * 4
        after = wb_json("endpoints", "show", "runbook-canary")
        states = {r["revision"]: r["state"] for r in after["revisions"]}
        assert states == {
            "runbook-canary-predictor-00001": "serving",
            "runbook-canary-predictor-00002": "rolled-back",
        }
    finally:
        wb("endpoints", "stop", "--all")
