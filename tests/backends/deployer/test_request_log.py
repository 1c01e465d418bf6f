"""The request log's writer: bounded in size, sampled, off when asked, private, cheap to call."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np

from workbench_dsl.backends.deployer.requestlog import (
    LogSettings,
    RequestLog,
    read_requests,
    read_settings,
    segments,
    write_settings,
)


def _log(tmp_path: Path, **kw: object) -> RequestLog:
    return RequestLog(tmp_path / "requests", LogSettings(**kw))  # type: ignore[arg-type]


def test_records_are_what_the_model_saw_and_private(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.record("r1", "ok", 0.002, np.array([[1.5, 2.0]]), np.array([1]))
    log.record("r1", "bad_input", 0.001, [["x"]])
    log.flush()
    ok = list(read_requests(tmp_path / "requests"))
    assert [(r["revision"], r["inputs"], r["outputs"]) for r in ok] == [("r1", [[1.5, 2.0]], [1])]
    everything = list(read_requests(tmp_path / "requests", status=None))
    assert [r["status"] for r in everything] == ["ok", "bad_input"]
    assert set(everything[0]) == {
        "t",
        "revision",
        "status",
        "latency_s",
        "inputs",
        "names",
        "outputs",
    }
    (seg,) = segments(tmp_path / "requests")
    assert stat.S_IMODE(os.stat(seg).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "requests").st_mode) == 0o700
    log.close()


def test_the_log_stays_within_its_bound_dropping_the_oldest(tmp_path: Path) -> None:
    log = _log(tmp_path, request_log_max_mb=1)
    row = [list(range(100))]  # ~300 bytes a record
    for i in range(12_000):  # ~3.6 MB through a 1 MiB log
        log.record("r1", "ok", 0.0, row, [i])
        if i % 2000 == 0:
            log.flush()
    log.flush()
    total = sum(p.stat().st_size for p in segments(tmp_path / "requests"))
    assert total <= 1 << 20
    kept = [r["outputs"][0] for r in read_requests(tmp_path / "requests")]
    assert kept[-1] == 11_999 and kept[0] > 5000 and kept == sorted(kept)
    log.close()


def test_a_record_larger_than_a_segment_is_dropped_not_the_bound(tmp_path: Path) -> None:
    log = _log(tmp_path, request_log_max_mb=1)
    log.record("r1", "ok", 0.0, [[0.0] * 100_000])  # ~500 kB: over a segment (128 kiB)
    log.flush()
    assert log.dropped == 1 and not list(read_requests(tmp_path / "requests"))
    log.close()


def test_sampling_and_off(tmp_path: Path) -> None:
    sampled = RequestLog(tmp_path / "a", LogSettings(request_log_sample=0.25))
    off = RequestLog(tmp_path / "b", LogSettings(log_requests=False))
    for i in range(4000):
        sampled.record("r1", "ok", 0.0, [[i]])
        off.record("r1", "ok", 0.0, [[i]])
    sampled.flush()
    n = len(list(read_requests(tmp_path / "a")))
    assert 800 < n < 1200
    assert not (tmp_path / "b").exists() and off._thread is None
    sampled.close()


def test_record_is_cheap_on_the_request_path(tmp_path: Path) -> None:
    log = _log(tmp_path)
    x = np.random.default_rng(0).normal(size=(8, 30))
    start = time.perf_counter()
    for _ in range(2000):
        log.record("r1", "ok", 0.001, x, [0] * 8)
    per_call = (time.perf_counter() - start) / 2000
    log.flush()
    assert per_call < 200e-6, f"{per_call * 1e6:.1f} us per record"
    log.close()


def test_settings_round_trip_private(tmp_path: Path) -> None:
    assert read_settings(tmp_path) == LogSettings()  # none written: the defaults
    write_settings(tmp_path / "ep", LogSettings(False, 0.5, 8))
    assert read_settings(tmp_path / "ep") == LogSettings(False, 0.5, 8)
    assert stat.S_IMODE(os.stat(tmp_path / "ep" / "request_log.json").st_mode) == 0o600
    assert LogSettings(request_log_sample=1.5).check() and LogSettings(request_log_max_mb=0).check()
