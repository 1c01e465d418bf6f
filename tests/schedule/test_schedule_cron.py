"""Cron: five fields locally, KFP's six (seconds first), one-line errors."""

from __future__ import annotations

import pytest

from workbench_dsl.errors import UsageError
from workbench_dsl.schedule import cron


@pytest.mark.parametrize(
    ("five", "six"),
    [
        ("0 3 * * 0", "0 0 3 * * 0"),
        ("*/15 * * * *", "0 */15 * * * *"),
        ("0 3 * * 7", "0 0 3 * * 0"),
        ("0 3 * * 5-7", "0 0 3 * * 5-6,0"),
        ("30 2 1 jan mon-fri", "0 30 2 1 jan mon-fri"),
        ("@daily", "@daily"),
        ("0 0 3 ? * 2-6", "0 0 3 ? * 2-6"),
        ("15 */10 * * * *", "15 */10 * * * *"),
    ],
)
def test_to_kfp(five: str, six: str) -> None:
    assert cron.to_kfp(five) == six


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 3 * *", "has 4 field(s); write 5: minute hour day-of-month month day-of-week"),
        ("0 0 3 * * 0", "six fields look like KFP's seconds-first form"),
        ("61 3 * * *", "invalid minute field '61'"),
        ("0 25 * * *", "invalid hour field '25'"),
        ("@sometimes", "unknown macro"),
    ],
)
def test_validate_errors(expr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cron.validate(expr)


def test_kfp_seconds_field_is_checked() -> None:
    with pytest.raises(UsageError, match="invalid seconds field '75'"):
        cron.to_kfp("75 0 3 * * *")


def test_unknown_timezone() -> None:
    with pytest.raises(UsageError, match="unknown timezone 'Mars/Olympus'"):
        cron.timezone("Mars/Olympus")
