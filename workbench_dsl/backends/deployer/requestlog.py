"""The request log of a local endpoint: a bounded, sampled record of what each revision was asked.

KServe's payload logging (https://kserve.github.io/website/latest/modelserving/logger/logger/)
sends each request and response to a sink; a local endpoint keeps them itself, in
``endpoints/NAME/requests/`` under the local root (0700, files 0600 like the rest of it):
JSON lines in segments, one record per sampled request::

    {"t": 1764712345.1, "revision": "churn-predictor-00002", "status": "ok",
     "latency_s": 0.0012, "inputs": [[5.1, 3.5]], "names": null, "outputs": [0]}

``inputs`` are the instances as the model saw them (after the protocol's decoding),
``names`` the column names when the model was given a table. Never a header, the bearer
token or the error text of a failed request. The request path only draws the sample and
appends to a bounded queue; a writer thread encodes and writes, rotates a segment at an
eighth of the limit and drops the oldest segments beyond ``request_log_max_mb``. When the
queue is full (a burst faster than the disk), records are dropped, never the request.

Settings (``log_requests``, ``request_log_sample``, ``request_log_max_mb``, from the
``@serve`` step) are written by the deployer to ``endpoints/NAME/request_log.json`` and
re-read by the server whenever its routing changes.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SETTINGS_FILE = "request_log.json"
DIR = "requests"
#: Records waiting for the writer at most; beyond it a record is dropped, not the request.
QUEUE_MAX = 10_000
#: Segments per limit: the oldest eighth goes when the log is full.
SEGMENTS = 8


@dataclass(frozen=True)
class LogSettings:
    """How an endpoint logs its requests (the ``@serve`` options of the same names)."""

    log_requests: bool = True
    request_log_sample: float = 1.0
    request_log_max_mb: int = 64

    def check(self) -> str | None:
        """None when valid, else why not."""
        if not 0.0 <= float(self.request_log_sample) <= 1.0:
            return f"request_log_sample must be from 0 to 1 (got {self.request_log_sample!r})"
        if int(self.request_log_max_mb) < 1:
            return f"request_log_max_mb must be at least 1 (got {self.request_log_max_mb!r})"
        return None


def log_dir(endpoint_dir: Path) -> Path:
    return endpoint_dir / DIR


def write_settings(endpoint_dir: Path, settings: LogSettings) -> None:
    """Record an endpoint's logging settings (atomically, owner-only)."""
    endpoint_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = endpoint_dir / f".{SETTINGS_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(settings), f)
    os.replace(tmp, endpoint_dir / SETTINGS_FILE)


def read_settings(endpoint_dir: Path) -> LogSettings:
    """The recorded settings, or the defaults when none were written (an older endpoint)."""
    try:
        data = json.loads((endpoint_dir / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LogSettings()
    return LogSettings(
        log_requests=bool(data.get("log_requests", True)),
        request_log_sample=float(data.get("request_log_sample", 1.0)),
        request_log_max_mb=int(data.get("request_log_max_mb", 64)),
    )


def _plain(value: Any) -> tuple[Any, list[str] | None]:
    """JSON-able instances and, for a table, its column names."""
    columns = getattr(value, "columns", None)
    if columns is not None and hasattr(value, "to_numpy"):  # a pandas DataFrame
        return _plain(value.to_numpy())[0], [str(c) for c in columns]
    if hasattr(value, "tolist"):
        return value.tolist(), None
    if isinstance(value, list | tuple):
        return [_plain(v)[0] for v in value], None
    if isinstance(value, dict):
        return {str(k): _plain(v)[0] for k, v in value.items()}, None
    return value, None


class RequestLog:
    """The writer side, inside the endpoint's server: ``record`` is cheap, a thread writes."""

    def __init__(self, directory: Path, settings: LogSettings | None = None) -> None:
        self.dir = directory
        self.settings = settings or LogSettings()
        self.dropped = 0
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(QUEUE_MAX)
        self._thread: threading.Thread | None = None
        self._file: Any = None
        self._size = 0

    def configure(self, settings: LogSettings) -> None:
        self.settings = settings

    def record(
        self,
        revision: str,
        status: str,
        latency_s: float,
        inputs: Any,
        outputs: Any = None,
    ) -> None:
        """Queue one request for the log (sampled; never blocks; off when logging is off)."""
        s = self.settings
        if not s.log_requests or s.request_log_sample <= 0:
            return
        if s.request_log_sample < 1.0 and random.random() >= s.request_log_sample:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait((time.time(), revision, status, latency_s, inputs, outputs))
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was queued is written (tests, and the server's shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:  # write what is queued in one go, then flush once
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            try:
                for item in batch:
                    if item is None:
                        stop = True
                    else:
                        self._write(item)
                if self._file is not None:
                    self._file.flush()
            except Exception:  # a full disk, say: the log never takes the server down
                self.dropped += 1
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                if self._file is not None:
                    self._file.close()
                    self._file = None
                return

    def _write(self, item: tuple[Any, ...]) -> None:
        t, revision, status, latency_s, inputs, outputs = item
        ins, names = _plain(inputs)
        outs, _ = _plain(outputs)
        rec = {
            "t": round(t, 6),
            "revision": revision,
            "status": status,
            "latency_s": round(latency_s, 6),
            "inputs": ins,
            "names": names,
            "outputs": outs,
        }
        line = (json.dumps(rec, separators=(",", ":"), default=str) + "\n").encode()
        limit = int(self.settings.request_log_max_mb) << 20
        segment = max(limit // SEGMENTS, 4096)
        if len(line) > segment:  # one record never takes the log past its bound
            self.dropped += 1
            return
        if self._file is None or self._size + len(line) > segment:
            self._rotate(limit)
        self._file.write(line)
        self._size += len(line)

    def _rotate(self, limit: int) -> None:
        if self._file is not None:
            self._file.close()
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.dir / f"{time.time_ns():020d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "ab")
        self._size = 0
        # The new segment is empty: drop the oldest until the rest fits within the limit.
        segs = segments(self.dir)
        total = sum(p.stat().st_size for p in segs)
        for old in segs[:-1]:
            if total <= limit - max(limit // SEGMENTS, 4096):
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)


def segments(directory: Path) -> list[Path]:
    """The log's segments, oldest first."""
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".jsonl")
    except OSError:
        return []


def read_requests(
    directory: Path,
    *,
    since: float | None = None,
    revision: str | None = None,
    status: str | None = "ok",
    newest_first: bool = False,
) -> Iterator[dict[str, Any]]:
    """The logged records, oldest first (or newest first), filtered (a torn last line is
    skipped). Only the lines a caller goes on to ask for are decoded."""
    segs = segments(directory)
    for seg in reversed(segs) if newest_first else segs:
        try:
            text = seg.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # dropped by the writer meanwhile
        lines = text.splitlines()
        for line in reversed(lines) if newest_first else lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            if since is not None and float(rec.get("t", 0)) < since:
                if newest_first:
                    return  # everything further back is older still
                continue
            if revision is not None and rec.get("revision") != revision:
                continue
            if status is not None and rec.get("status") != status:
                continue
            yield rec


def log_state(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when the log does (names, sizes, mtimes): a cache key for readers."""
    out = []
    for p in segments(directory):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(out)
