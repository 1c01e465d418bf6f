"""Engine overhead: the local engine vs ``kfp.local`` (SubprocessRunner, use_venv=False) on the same YAML.

    python bench/engine_overhead.py                # both engines, 5 repeats (kfp.local: 3)
    python bench/engine_overhead.py --skip-kfp-local --repeats 9
    python bench/engine_overhead.py --markdown     # the table for bench/RESULTS.md
    python bench/engine_overhead.py --skip-kfp-local --cases chain1,chain20,chain20-cached

Pipelines (compiled here with the installed KFP, each run from its YAML):

* ``chain1`` / ``chain20``: 1 and 20 no-op steps in a chain (the per-step
  overhead is the slope between them);
* ``fanout16``: 16 independent no-op steps and a join after all of them;
* ``sleep8``: ``ParallelFor`` over 8 one-second sleeps with ``parallelism=8``;
* ``chain20-cached``: ``chain20`` again with every step already in the cache.

Each measurement is a fresh process. "engine" (engine time) is the wall time
of the run call itself inside that process: from ``execute.start`` being called
on the YAML text to its return (parsing or reusing the parsed spec, the
preflight, recording the run, every task, the lineage events written, the run
store closed), with the engine's modules and those a run imports lazily
(lineage, the settings reader, PyYAML) imported before -- interpreter start and
imports excluded; for ``kfp.local``, calling the pipeline loaded with
``load_component_from_file``. "cpu" is the CPU time of the engine process over
that call (``time.process_time``: every thread; the workers' processes are not
in it); steadier than wall time on a shared machine. "wall" is the whole
process, interpreter start and imports included. Reported: medians.

"floor" (``--floor-attempts``) is one no-op attempt of the same component alone
in a warm task runner -- fork the warm worker's spare child, run
``kfp.dsl.executor_main``, reap it, read its outputs -- the median over serial
attempts; ``per_step`` minus the floor is what the engine adds per step.

kfp.local with ``use_venv=False`` pip-installs each component's requirements
(here only ``kfp==<version>``) into the interpreter running it -- the project's
``.venv``. This script refuses to run it unless every YAML pins exactly the
installed KFP version (then pip finds it satisfied and changes nothing), runs
it with ``PIP_NO_INDEX=1`` so pip could not download anything anyway, and
checks the installed distributions are identical before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

PIPELINES_SRC = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def noop(x: int) -> int:
    return x


@dsl.component(base_image="python:3.11")
def done() -> int:
    return 0


@dsl.component(base_image="python:3.11")
def sleep(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@dsl.pipeline(name="chain1")
def chain1(n: int = 0) -> int:
    return noop(x=n).output


@dsl.pipeline(name="chain20")
def chain20(n: int = 0) -> int:
    t = noop(x=n)
    for _ in range(19):
        t = noop(x=t.output)
    return t.output


@dsl.pipeline(name="fanout16")
def fanout16(n: int = 0) -> int:
    tasks = [noop(x=n) for _ in range(16)]
    return done().after(*tasks).output


@dsl.pipeline(name="sleep8")
def sleep8() -> list:
    with dsl.ParallelFor([1, 2, 3, 4, 5, 6, 7, 8], parallelism=8):
        s = sleep(seconds=1.0)
    return dsl.Collected(s.output)
"""

OURS = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
import yaml
# Imported before timing, as kfp is below: the engine and what a run imports lazily
# (lineage, the settings file's reader). "engine" is then the run itself.
from workbench_dsl.engine import execute, runner, lineage_observer
from workbench_dsl.backends.lineage import events
from workbench_dsl import config
from workbench_dsl.paths import LocalRoot
text = Path(sys.argv[1]).read_text()
t1 = time.perf_counter()
c1 = time.process_time()
s = execute.start(text, {}, root=LocalRoot(Path(sys.argv[2])), cache=sys.argv[3] == "1")
t2 = time.perf_counter()
c2 = time.process_time()
assert s.status == "SUCCEEDED", s.failures
print(json.dumps({"engine": t2 - t1, "cpu": c2 - c1, "cached": sum(t["cached"] for t in s.tasks)}))
"""

# The floor under a step: one attempt of the same no-op component, alone, in a warm
# TaskRunner (fork a warm worker's spare child, run executor_main, reap it, read its
# outputs) -- what tests/engine/runner/bench_runner_overhead.py measures, on the
# executor compiled here. Serial attempts after a warm-up; the median.
FLOOR = """
import json, statistics, sys, time
from pathlib import Path
from workbench_dsl.engine import attempts as att
from workbench_dsl.engine.runner import TaskRunner
from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.engine.task_api import TaskSpec
from workbench_dsl.paths import LocalRoot
spec = PipelineSpec.parse(Path(sys.argv[1]).read_text())
work, n = Path(sys.argv[2]), int(sys.argv[3])
comp = next(c for c in spec.components.values() if "executorLabel" in c)
executor = spec.executor(comp["executorLabel"])
root = LocalRoot(work / "root").ensure()

def task(i):
    wd = work / "w" / str(i)
    return TaskSpec(run_id="floor", task=f"t{i}", attempt=1, executor=executor,
                    executor_input=att.executor_input(comp, {"x": 0}, {}, wd), env={},
                    workdir=wd, log_path=work / "logs" / f"{i}.log")

times = []
with TaskRunner(root) as r:
    r.warmup()
    assert r.submit(task(-1)).result().status == "SUCCEEDED"
    for i in range(n):
        t0 = time.perf_counter()
        outcome = r.submit(task(i)).result()
        times.append(time.perf_counter() - t0)
        assert outcome.status == "SUCCEEDED", outcome.error
print(json.dumps({"floor": statistics.median(times), "n": n}))
"""

KFP_LOCAL = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from kfp import components, local
comp = components.load_component_from_file(sys.argv[1])
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[2],
           enable_caching=sys.argv[3] == "1", cache_root=sys.argv[2] + "/cache")
t1 = time.perf_counter()
comp()
t2 = time.perf_counter()
print(json.dumps({"engine": t2 - t1}))
"""


def compile_pipelines(out: Path) -> dict[str, Path]:
    from kfp import compiler

    src = out / "bench_pipelines.py"
    src.write_text(PIPELINES_SRC)
    sys.path.insert(0, str(out))
    import bench_pipelines  # type: ignore[import-not-found]

    ns = vars(bench_pipelines)
    paths = {}
    for name in ("chain1", "chain20", "fanout16", "sleep8"):
        p = out / f"{name}.yaml"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiler.Compiler().compile(ns[name], str(p))
        paths[name] = p
    return paths


def installed() -> set[tuple[str, str]]:
    return {(d.metadata["Name"] or "", d.version) for d in metadata.distributions()}


def check_kfp_pins(paths: dict[str, Path]) -> str:
    """Refuse unless every YAML pins the installed kfp (kfp.local would install it)."""
    version = metadata.version("kfp")
    for p in paths.values():
        pins = set(re.findall(r"kfp==([0-9][^'\" ]*)", p.read_text()))
        if pins - {version}:
            raise SystemExit(
                f"refusing to run kfp.local: {p.name} pins kfp {sorted(pins)} but {version} is "
                f"installed; kfp.local (use_venv=False) would replace it in {sys.prefix}"
            )
    return version


def measure(
    script: str, yaml: Path, work: Path, cache: bool, env: dict[str, str]
) -> dict[str, float]:
    import time

    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script, str(yaml), str(work), "1" if cache else "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work.parent,
        timeout=900,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{yaml.name} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


CASES = ("chain1", "chain20", "fanout16", "sleep8", "chain20-cached")


def run_engine(
    name: str,
    script: str,
    paths: dict[str, Path],
    repeats: int,
    env: dict[str, str],
    tmp: Path,
    cases: tuple[str, ...] = CASES,
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for case in cases:
        yaml = paths[case.replace("-cached", "")]
        samples = []
        for i in range(repeats):
            work = tmp / f"{name}-{case}-{i}"
            work.mkdir(parents=True)
            if case.endswith("-cached"):
                measure(script, yaml, work, True, env)  # fill the cache
            samples.append(measure(script, yaml, work, case.endswith("-cached") or False, env))
            print(
                f"  {name:10} {case:15} engine {samples[-1]['engine']:.3f}s "
                f"cpu {samples[-1].get('cpu', float('nan')):.3f}s wall {samples[-1]['wall']:.3f}s",
                file=sys.stderr,
            )
        results[case] = {
            "engine": statistics.median(s["engine"] for s in samples),
            "wall": statistics.median(s["wall"] for s in samples),
            "n": len(samples),
        }
        if all("cpu" in s for s in samples):
            results[case]["cpu"] = statistics.median(s["cpu"] for s in samples)
    if "chain1" not in results or "chain20" not in results:
        return results
    c1, c20 = results["chain1"]["engine"], results["chain20"]["engine"]
    results["per_step"] = {
        "engine": (c20 - c1) / 19,
        "wall": (results["chain20"]["wall"] - results["chain1"]["wall"]) / 19,
        "n": 0,
    }
    return results


def measure_floor(yaml: Path, work: Path, attempts: int, env: dict[str, str]) -> float:
    """The median time of one no-op attempt alone in a warm task runner (see FLOOR)."""
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", FLOOR, str(yaml), str(work), str(attempts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the floor failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["floor"])


def table(ours: dict, theirs: dict | None) -> str:
    rows = [
        "| case | workbench engine (s) | workbench wall (s) | kfp.local engine (s) | kfp.local wall (s) | ratio (engine) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case in (*CASES, "per_step"):
        if case not in ours:
            continue
        o = ours[case]
        if theirs:
            t = theirs[case]
            ratio = t["engine"] / o["engine"] if o["engine"] > 0 else float("inf")
            rows.append(
                f"| {case} | {o['engine']:.3f} | {o['wall']:.3f} | {t['engine']:.3f} | {t['wall']:.3f} | {ratio:.1f}x |"
            )
        else:
            rows.append(f"| {case} | {o['engine']:.3f} | {o['wall']:.3f} | - | - | - |")
    rows += ["", "| case | workbench engine CPU (s) |", "|---|---:|"]
    rows += [f"| {c} | {ours[c]['cpu']:.3f} |" for c in CASES if "cpu" in ours.get(c, {})]
    if "floor" in ours:
        f, per = ours["floor"]["engine"], ours.get("per_step", {}).get("engine")
        rows += ["", f"floor (one no-op attempt alone in a warm task runner): {f * 1000:.1f} ms"]
        if per is not None:
            rows.append(
                f"per step {per * 1000:.1f} ms = floor + {(per - f) * 1000:.1f} ms of the engine"
            )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kfp-local-repeats", type=int, default=3)
    ap.add_argument("--skip-kfp-local", action="store_true")
    ap.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES)
    )
    ap.add_argument(
        "--floor-attempts", type=int, default=50, help="attempts timed for the floor (0: skip it)"
    )
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table")
    ap.add_argument("--json", action="store_true", help="print the raw medians as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmpdir:
        tmp = Path(tmpdir)
        paths = compile_pipelines(tmp)
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("WORKBENCH_HOME", None)
        print("workbench engine:", file=sys.stderr)
        cases = tuple(c for c in args.cases.split(",") if c)
        unknown = sorted(set(cases) - set(CASES))
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
        ours = run_engine("workbench", OURS, paths, args.repeats, env, tmp, cases)
        if args.floor_attempts > 0:
            floor = measure_floor(paths["chain1"], tmp / "floor", args.floor_attempts, env)
            ours["floor"] = {"engine": floor, "wall": floor, "n": args.floor_attempts}
            print(f"  floor: {floor * 1000:.1f} ms per attempt", file=sys.stderr)
        theirs = None
        if not args.skip_kfp_local:
            version = check_kfp_pins(paths)
            before = installed()
            kenv = dict(env, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
            print(f"kfp.local (SubprocessRunner(use_venv=False), kfp {version}):", file=sys.stderr)
            try:
                theirs = run_engine(
                    "kfp.local", KFP_LOCAL, paths, args.kfp_local_repeats, kenv, tmp, cases
                )
            finally:
                changed = sorted(installed() ^ before)
                if changed:
                    print(f"WARNING: installed distributions changed: {changed}", file=sys.stderr)
            if changed:
                return 1
            print("kfp.local left the environment unchanged", file=sys.stderr)
    if args.json:
        print(json.dumps({"workbench": ours, "kfp_local": theirs}, indent=2))
    else:
        print(table(ours, theirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
