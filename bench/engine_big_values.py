"""A string output of 10-100 MB handed to the next task: time and the engine's peak memory.

    python bench/engine_big_values.py                       # 10, 30 and 60 MB, 3 runs each
    python bench/engine_big_values.py --mb 10,100 --repeats 5
    python bench/engine_big_values.py --engine /path/to/other/checkout   # another tree
    python bench/engine_big_values.py --split     # the worker's request reading alone

``--split``: how the task runner's worker cuts requests out of its input pipe, the
loop it had (append each read to one buffer, search it from the start) against
``worker._Lines``, on one request of 8 and 32 MiB read 4 and 64 KiB at a time
(a pipe holds 64 KiB; a busy machine hands the reader smaller pieces).

Each run is ``workbench run`` of ``big_out(n) -> str`` feeding ``big_in(s) -> len(s)`` in
a fresh local root, as its own process. Reported (medians): the consumer task's
duration (from the run store: what handing it its input costs), the whole run as the
engine reports it, and the process's peak resident memory (``ru_maxrss`` of that child, from ``wait4``).
"""

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (no ``from __future__ import annotations``: KFP reads the components' annotations)


def _compile(out: Path) -> None:
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def big_out(n: int) -> str:
        return "x" * n

    @dsl.component(base_image="python:3.11")
    def big_in(s: str) -> int:
        return len(s)

    @dsl.pipeline(name="big-value")
    def big_value(n: int) -> None:
        big_in(s=big_out(n=n).output)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(big_value, str(out))


def _one(engine: Path, spec: Path, mb: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-big-") as home:
        env = dict(os.environ, PYTHONPATH=str(engine), WORKBENCH_HOME=home)
        cmd = [sys.executable, "-m", "workbench_dsl", "run", str(spec)]
        start = time.perf_counter()
        log = Path(home) / "out.txt"
        with open(log, "w") as sink:  # a file, not a pipe: wait4 reaps the child below
            proc = subprocess.Popen(
                [*cmd, "-p", f"n={mb << 20}"], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = log.read_text()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"run failed ({proc.returncode}): {out[-500:]}")
        db = sqlite3.connect(Path(home) / "runs.db")
        (dur,) = db.execute("SELECT duration_s FROM tasks WHERE task = 'big-in'").fetchone()
        (run_s,) = db.execute("SELECT finished_at - started_at FROM runs").fetchone()
        db.close()
    rss_mb = usage.ru_maxrss / 1024
    return {"consumer_s": float(dur), "run_s": float(run_s), "wall_s": wall, "rss_mb": rss_mb}


def _split_before(chunks: list[bytes]) -> list[bytes]:
    """The worker's loop before ``_Lines`` (kept here as the reference)."""
    buf, out = b"", []
    for data in chunks:
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append(line)
    return out


def split_bench() -> None:
    sys.path.insert(0, str(REPO))
    from workbench_dsl.engine.worker import _Lines

    print("| request | read size | before (s) | after (s) |")
    print("|---:|---:|---:|---:|")
    for mb in (8, 32):
        data = b"x" * (mb << 20) + b"\n"
        for kb in (64, 4):
            chunks = [data[i : i + (kb << 10)] for i in range(0, len(data), kb << 10)]
            start = time.perf_counter()
            before = _split_before(chunks)
            t_before = time.perf_counter() - start
            start = time.perf_counter()
            lines, after = _Lines(), []
            for c in chunks:
                after += lines.feed(c)
            t_after = time.perf_counter() - start
            assert before == after
            print(f"| {mb} MiB | {kb} KiB | {t_before:.2f} | {t_after:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", default="10,30,60", help="sizes in MiB, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engine", type=Path, default=REPO, help="the checkout to run")
    ap.add_argument("--split", action="store_true", help="only the request-reading loop")
    args = ap.parse_args()
    if args.split:
        split_bench()
        return
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "big_value.yaml"
        _compile(spec)
        print("| MiB | consumer task (s) | run (s) | wall (s) | peak RSS (MB) |")
        print("|---:|---:|---:|---:|---:|")
        for mb in (int(x) for x in args.mb.split(",")):
            runs = [_one(args.engine, spec, mb) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"| {mb} | {med['consumer_s']:.2f} | {med['run_s']:.2f} | {med['wall_s']:.2f} "
                f"| {med['rss_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
