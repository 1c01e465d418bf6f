"""Local trainer: a job's ranks as processes on this machine, wired as torch.distributed.

Each rank is ``python -m workbench_dsl.backends.trainer._boot MODULE`` with
torchrun's environment (``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``,
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ...). Every rank's output is
captured and written here line by line as ``[rank N] ...``. The first rank to
fail stops the others and fails the job with its own error. All ranks share
one process group, which is killed on any way out of :meth:`LocalTrainer.run`
(an error, a timeout, SIGTERM); ranks also die with this process if it is
SIGKILLed. The ``kubeflow`` SDK's LocalProcess backend is not used: it builds
a venv and installs torch per job and ignores ``num_nodes``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from workbench_dsl.backends.trainer._process import (
    free_port,
    signal_group,
    sigterm_raises,
)
from workbench_dsl.backends.trainer.base import (
    TrainingFailed,
    TrainingTimedOut,
    TrainJobSpec,
    require_torch,
)

_BOOT = "workbench_dsl.backends.trainer._boot"
#: Seconds the other ranks get to exit after SIGTERM before SIGKILL.
GRACE_S = 3.0


class LocalTrainer:
    """Runs a :class:`TrainJobSpec` as ``nodes * procs_per_node`` local processes."""

    def __init__(self, workdir: Path | None = None, out: IO[str] | None = None) -> None:
        self.workdir = workdir
        self.out = out

    def run(
        self, spec: TrainJobSpec, *, name: str | None = None, owner: dict[str, str] | None = None
    ) -> None:
        """Run every rank to completion; raise :class:`TrainingFailed` if one fails.

        ``name`` and ``owner`` name a cluster object; local processes are the run's.
        """
        world = spec.world_size
        if world > 1:
            require_torch(f"{spec.name}: training with {world} processes")
        out = self.out or sys.stdout
        rank_dir = Path(tempfile.mkdtemp(prefix="ranks-", dir=self.workdir))
        port = free_port()
        base = {
            **os.environ,
            **spec.env,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(spec.procs_per_node),
            "WORKBENCH_PARENT_PID": str(os.getpid()),
            # Every rank runs on this host: it may use device RANK of WORLD_SIZE.
            "WORKBENCH_HOST_PROCS": str(world),
            "PYTHONUNBUFFERED": "1",
        }
        procs: list[subprocess.Popen[bytes]] = []
        pgid: int | None = None
        with sigterm_raises():
            try:
                for rank in range(world):
                    env = {
                        **base,
                        "RANK": str(rank),
                        "LOCAL_RANK": str(rank % spec.procs_per_node),
                        "GROUP_RANK": str(rank // spec.procs_per_node),
                        "NODE_RANK": str(rank // spec.procs_per_node),
                        "WORKBENCH_HOST_INDEX": str(rank),
                        "WORKBENCH_RANK_ERROR_FILE": str(rank_dir / f"rank-{rank}.error.json"),
                    }
                    p = subprocess.Popen(
                        [sys.executable, "-m", _BOOT, spec.module],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        process_group=0 if pgid is None else pgid,
                    )
                    if pgid is None:
                        pgid = p.pid
                    procs.append(p)
                self._supervise(spec, procs, pgid, rank_dir, out)
            finally:
                if pgid is not None:
                    _stop(pgid, procs)
                for p in procs:
                    if p.stdout:
                        p.stdout.close()
                shutil.rmtree(rank_dir, ignore_errors=True)

    def _supervise(
        self,
        spec: TrainJobSpec,
        procs: list[subprocess.Popen[bytes]],
        pgid: int | None,
        rank_dir: Path,
        out: IO[str],
    ) -> None:
        assert pgid is not None
        sel = selectors.DefaultSelector()
        buffers: dict[int, bytes] = {}
        for rank, p in enumerate(procs):
            assert p.stdout is not None
            os.set_blocking(p.stdout.fileno(), False)
            sel.register(p.stdout, selectors.EVENT_READ, rank)
            buffers[rank] = b""
        deadline = time.monotonic() + spec.timeout if spec.timeout else None
        failure: TrainingFailed | None = None
        stop_at: float | None = None  # when the SIGTERM'd ranks get SIGKILL
        drain_until: float | None = None  # all ranks exited: read what is left, briefly

        def emit(rank: int, data: bytes, final: bool = False) -> None:
            buffers[rank] += data
            *lines, rest = buffers[rank].split(b"\n")
            if final and rest:
                lines.append(rest)
                rest = b""
            buffers[rank] = rest
            for line in lines:
                out.write(f"[rank {rank}] {line.decode('utf-8', 'replace')}\n")
            if lines:
                out.flush()

        while True:
            for key, _ in sel.select(timeout=0.05):
                rank = key.data
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    emit(rank, data)
                else:
                    sel.unregister(key.fileobj)
                    emit(rank, b"", final=True)
            codes = [p.poll() for p in procs]
            if failure is None:
                if any(code not in (None, 0) for code in codes):
                    failure = _first_failure(codes, rank_dir)
                    signal_group(pgid, signal.SIGTERM)
                    stop_at = time.monotonic() + GRACE_S
                if failure is None and deadline is not None and time.monotonic() > deadline:
                    failure = TrainingTimedOut(
                        f"{spec.name}: training timed out after {spec.timeout:g}s"
                    )
                    signal_group(pgid, signal.SIGTERM)
                    stop_at = time.monotonic() + GRACE_S
            elif stop_at is not None and time.monotonic() > stop_at:
                signal_group(pgid, signal.SIGKILL)
                stop_at = None
            if all(c is not None for c in codes):
                if not sel.get_map():
                    break
                # A grandchild may hold a rank's output open: read on, but not forever.
                drain_until = drain_until or time.monotonic() + 1.0
                if time.monotonic() > drain_until:
                    for rank in list(buffers):
                        emit(rank, b"", final=True)
                    break
        sel.close()
        if failure is not None:
            raise failure


def _stop(pgid: int, procs: list[subprocess.Popen[bytes]]) -> None:
    """End the job's process group: SIGTERM, SIGKILL after the grace period, reap the ranks."""
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    # poll() reaps: an exited rank must not count as alive while it is a zombie.
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)  # what is left, grandchildren included
    for p in procs:
        with contextlib.suppress(Exception):
            p.wait(timeout=GRACE_S)


def _read_error(rank_dir: Path, rank: int) -> dict[str, Any] | None:
    try:
        err = json.loads((rank_dir / f"rank-{rank}.error.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return err if isinstance(err, dict) else None


def _first_failure(codes: list[int | None], rank_dir: Path) -> TrainingFailed:
    """The failure that caused the others.

    When one rank fails, its peers soon fail too ("connection closed by peer").
    The cause is a rank killed by a signal (we have sent none yet), else the
    rank whose Python error was recorded first, else the lowest failed rank.
    """
    for rank, code in enumerate(codes):
        if code is not None and code < 0:
            return _rank_failure(rank, code, None)
    errors = {r: e for r in range(len(codes)) if (e := _read_error(rank_dir, r)) is not None}
    if errors:
        rank = min(errors, key=lambda r: (float(errors[r].get("time", 0.0)), r))
        return _rank_failure(rank, codes[rank] or 1, errors[rank])
    rank = next(r for r, code in enumerate(codes) if code not in (None, 0))
    return _rank_failure(rank, codes[rank] or 1, None)


def _rank_failure(rank: int, code: int, err: dict[str, Any] | None) -> TrainingFailed:
    if err:
        return TrainingFailed(
            f"rank {rank} failed: {err['type']}: {err['message']}",
            rank=rank,
            error_type=err["type"],
        )
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return TrainingFailed(f"rank {rank} was killed by {name}", rank=rank)
    return TrainingFailed(f"rank {rank} exited with code {code}", rank=rank)
