"""``workbench_dsl.report``: intermediate metrics, printed as Katib reads them; validated like Python."""

from __future__ import annotations

import pytest

import workbench_dsl
from workbench_dsl import report


def test_report_is_public_and_prints_katib_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert workbench_dsl.report is report
    report(step=3, accuracy=0.91, loss=1)
    assert capsys.readouterr().out == "step=3 accuracy=0.91 loss=1.0\n"


def test_only_rank_zero_reports(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    report(step=1, accuracy=0.5)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": -1, "acc": 1.0}, "report() step must be a whole number >= 0 (got -1)"),
        ({"step": 1.5, "acc": 1.0}, "report() step must be a whole number >= 0 (got 1.5)"),
        ({"step": 1}, "report() needs at least one metric, e.g. report(step=1, accuracy=0.9)"),
        ({"step": 1, "acc": "high"}, "report() metric 'acc' must be a number (got str)"),
        (
            {"step": 1, "acc": float("nan")},
            "report() metric 'acc' must be a finite number (got nan)",
        ),
    ],
)
def test_bad_reports(kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError) as info:
        report(**kwargs)
    assert str(info.value) == message
