"""Benchmark the local ``@sweep`` and ``@train`` launchers; print medians of several runs.

    python bench/sweep.py              # 3 runs of each, plain text
    python bench/sweep.py --runs 5 --markdown

* sweep: 40 trials of a 0.2 s objective with ``parallel_trials=2`` through the
  ``@sweep`` launcher's local path (Optuna journal study, trial worker
  processes, the trials dataset written). The ideal is 40 x 0.2 / 2 = 4 s; the
  target is within 1.3x of it (5.2 s).
* train: a ``@train(nodes=2)`` step whose two processes all-reduce a 1M-float
  tensor 20 times over gloo on CPU, through the ``@train`` launcher's local path
  (two fresh interpreters that import torch, a process group, the result back).

Both run the launcher body in this process, as the engine's task process
would; the engine's own per-task overhead is not included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TRIALS, PARALLEL, OBJECTIVE_S = 40, 2, 0.2


def _sweep_step():  # type: ignore[no-untyped-def]
    from workbench_dsl import space, sweep

    @sweep(
        space={"x": space.uniform(-1.0, 1.0)},
        objective="v",
        algorithm="tpe",
        max_trials=TRIALS,
        parallel_trials=PARALLEL,
        seed=0,
    )
    def objective(x: float) -> dict:
        import time

        time.sleep(0.2)
        return {"v": -x * x}

    return objective


def _train_step():  # type: ignore[no-untyped-def]
    from workbench_dsl import train

    @train(nodes=2, procs_per_node=1)
    def allreduce(rounds: int) -> float:
        import torch
        import torch.distributed as dist

        t = torch.ones(1_000_000)
        for _ in range(rounds):
            dist.all_reduce(t)
        return float(t[0].item())

    return allreduce


def _launch(step, kind: str, kwargs: dict, run_dir: Path) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Run a step's launcher body as its task would; return (seconds, result)."""
    import importlib

    from workbench_dsl.dsl._launcher import function_source

    config = (
        step.launch_settings(step.config, None).to_json()
        if kind == "sweep"
        else step.job_config(step.config).to_json()
    )
    launch = importlib.import_module(f"workbench_dsl.runtime.{kind}").launch
    env = {
        "WORKBENCH_ENGINE": "local",
        "WORKBENCH_RUN_DIR": str(run_dir),
        "WORKBENCH_TASK": step.name,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - trial output is not the point here
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        start = time.perf_counter()
        result = launch(function_source(step.fn), step.fn.__name__, json.dumps(config), kwargs)
        return time.perf_counter() - start, result
    finally:
        sys.stdout = real_stdout
        devnull.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bench_sweep(runs: int) -> list[float]:
    from kfp import dsl

    step = _sweep_step()
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            trials = dsl.Dataset(name="trials", uri=str(Path(tmp) / "trials.csv"))
            seconds, _ = _launch(step, "sweep", {"trials": trials}, Path(tmp) / "run")
            rows = Path(trials.path).read_text().count("\n") - 1
            assert rows == TRIALS, rows
        times.append(seconds)
    return times


def bench_train(runs: int) -> list[float]:
    step = _train_step()
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, value = _launch(step, "train", {"rounds": 20}, Path(tmp))
            assert value == 2.0**20, value
        times.append(seconds)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    ideal = TRIALS * OBJECTIVE_S / PARALLEL
    sweep_times = bench_sweep(args.runs)
    sweep_median = statistics.median(sweep_times)
    try:
        train_times = bench_train(args.runs)
    except ImportError as e:  # no torch extra
        train_times = []
        print(f"train: skipped ({e})", file=sys.stderr)
    rows = [
        (
            f"sweep: {TRIALS} trials x {OBJECTIVE_S}s, parallel_trials={PARALLEL}",
            sweep_median,
            f"{sweep_median / ideal:.2f}x the ideal {ideal:g}s (target <= 1.3x)",
            sweep_times,
        )
    ]
    if train_times:
        rows.append(
            (
                "train: nodes=2, gloo all_reduce of 1M floats x 20 (CPU)",
                statistics.median(train_times),
                "two fresh interpreters importing torch, process group, result back",
                train_times,
            )
        )
    if args.markdown:
        print("| benchmark | median (s) | note | runs (s) |\n|---|---|---|---|")
        for name, med, note, ts in rows:
            print(f"| {name} | {med:.2f} | {note} | {', '.join(f'{t:.2f}' for t in ts)} |")
    else:
        for name, med, note, ts in rows:
            print(f"{name}: median {med:.2f}s ({note}; runs {', '.join(f'{t:.2f}' for t in ts)})")
    return 0 if sweep_median <= 1.3 * ideal else 1


if __name__ == "__main__":
    raise SystemExit(main())
