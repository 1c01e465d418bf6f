"""set_retry's policy: backoff delays and the overall limit."""

from __future__ import annotations

from workbench_dsl.engine.retry import MAX_DURATION, RetryPolicy, duration_seconds


def test_durations() -> None:
    assert duration_seconds("3600s", 0) == 3600
    assert duration_seconds("1.5s", 0) == 1.5
    assert duration_seconds("2m", 0) == 120
    assert duration_seconds(None, 7) == 7
    assert duration_seconds("soon", 7) == 7


def test_backoff_grows_by_factor_and_stops_at_max_duration() -> None:
    p = RetryPolicy.of(
        {
            "retryPolicy": {
                "maxRetryCount": 4,
                "backoffDuration": "10s",
                "backoffFactor": 2.0,
                "backoffMaxDuration": "60s",
            }
        }
    )
    assert [p.delay(n) for n in (1, 2, 3)] == [10, 20, 40]
    assert p.allows(1, 0) and p.allows(2, 10)
    assert not p.allows(3, 30)  # 30 s in + 40 s wait > 60 s
    assert not p.allows(5, 0)  # more than maxRetryCount


def test_no_policy_means_no_retry() -> None:
    assert not RetryPolicy.of({}).allows(1, 0)


def test_a_backoff_past_what_a_duration_holds_is_capped_not_an_overflow() -> None:
    huge = "1" + "0" * 300 + "s"
    p = RetryPolicy.of(
        {
            "retryPolicy": {
                "maxRetryCount": 5,
                "backoffDuration": "0.001s",
                "backoffFactor": 1e300,
                "backoffMaxDuration": huge,
            }
        }
    )
    assert p.max_duration == MAX_DURATION
    assert p.delay(1) == 0.001 and p.delay(3) == MAX_DURATION  # 1e600 overflowed
    assert p.allows(1, 0.0) and not p.allows(3, 0.5)
