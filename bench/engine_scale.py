"""Engine at scale: runs of 1,000 to 10,000 no-op tasks -- first run, cached rerun, resume.

    python bench/engine_scale.py                              # every shape and phase, once
    python bench/engine_scale.py --shapes fan1000,fan10000 --phases cached --repeats 3
    python bench/engine_scale.py --shapes fan10000 --phases views   # runs show / UI run page
    python bench/engine_scale.py --profile fan10000:cached    # where the time of a phase goes
    python bench/engine_scale.py --markdown                    # the table for bench/RESULTS.md

Shapes (specs built from small pipelines compiled by KFP, then widened: KFP's
compiler alone takes minutes on a 10,000-task DAG):

* ``chainN``: N ``inc(x) -> x + 1`` steps, each fed the previous one's output;
* ``fanN``: ``ParallelFor`` over N items of ``noop(x=item)``;
* ``nestedAxB``: ``ParallelFor`` over A items, inside it one over B items, ``pair(a, b)``;
* ``meshN``: N/100 layers of 100 ``add(a, b)`` tasks, each fed by two tasks of the
  layer above (a mesh of diamonds).

Phases, each in a fresh process (the number reported is the run call itself,
modules already imported; ``rss`` is the engine process's peak resident memory):

* ``first``: a first run in a fresh local root (nothing cached);
* ``cached``: the same spec again in that root: every task a cache hit;
* ``resume``: a first run in a fresh root, SIGKILLed (with its workers) once half
  its tasks succeeded, then ``execute.resume``: reports the resume's time and how
  many tasks it ran again;
* ``views``: after ``first`` (or ``cached``), ``runs show --json`` (the first page
  of tasks, with the counts) and the UI's run page for that run, in-process.

Reported: medians over ``--repeats``. Per task = the phase's time / tasks in the run.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

DEFAULT_SHAPES = "chain1000,fan1000,fan10000,nested100x100,mesh1000"
DEFAULT_PHASES = "first,cached,resume,views"

PIPELINES_SRC = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def inc(x: int) -> int:
    return x + 1


@dsl.component(base_image="python:3.11")
def noop(x: int) -> int:
    return x


@dsl.component(base_image="python:3.11")
def pair(a: int, b: int) -> int:
    return a * 1000 + b


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="chain")
def chain() -> None:
    inc(x=inc(x=0).output)


@dsl.pipeline(name="fan")
def fan() -> None:
    with dsl.ParallelFor([0, 1]) as i:
        noop(x=i)


@dsl.pipeline(name="nested")
def nested() -> None:
    with dsl.ParallelFor([0, 1]) as i:
        with dsl.ParallelFor([0, 1]) as j:
            pair(a=i, b=j)


@dsl.pipeline(name="mesh")
def mesh() -> None:
    a = add(a=0, b=1)
    add(a=a.output, b=a.output)
"""

ENGINE = """
import json, sys, time
from pathlib import Path


def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss keeps the peak of the process that
    # forked it across exec, here the benchmark's driver).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


from workbench_dsl.engine import execute, runner  # imported before timing
from workbench_dsl.paths import LocalRoot
what, spec_path, home = sys.argv[1], sys.argv[2], Path(sys.argv[3])
root = LocalRoot(home)
prof = None
if len(sys.argv) > 4:
    import cProfile
    prof = cProfile.Profile()
spec = json.loads(Path(spec_path).read_text())
wall0 = time.time()
t0 = time.perf_counter()
if prof: prof.enable()
if what == "resume":
    import sqlite3
    run_id = sqlite3.connect(root.runs_db).execute("SELECT run_id FROM runs").fetchone()[0]
    s = execute.resume(run_id, root=root)
else:
    s = execute.start(spec, root=root)
if prof:
    prof.disable()
    prof.dump_stats(sys.argv[4])
t1 = time.perf_counter()
import sqlite3
ran = sqlite3.connect(root.runs_db).execute(
    "SELECT COUNT(*) FROM attempts WHERE run_id=? AND started_at >= ?", (s.run_id, wall0)
).fetchone()[0]  # attempts this process started (a resume reuses what was done)
print(json.dumps({"status": s.status, "engine": t1 - t0, "tasks": len(s.tasks),
                  "cached": sum(t["cached"] for t in s.tasks), "ran": ran,
                  "rss_mb": peak_mb(),
                  "failures": s.failures[:2]}))
"""

VIEWS = """
import json, sys, time
from pathlib import Path
from workbench_dsl.paths import LocalRoot
from workbench_dsl.engine.store import RunStore
from workbench_dsl.engine.run_view import run_details
from workbench_dsl.ui.run_page import run_page
root = LocalRoot(Path(sys.argv[1]))
t0 = time.perf_counter()
store = RunStore(root.runs_db)
row = store.find_run(sys.argv[2])
d = run_details(store, row)
text = json.dumps(d, default=str)
t1 = time.perf_counter()
page = run_page(RunStore(root.runs_db), sys.argv[2], None)
t2 = time.perf_counter()
print(json.dumps({"runs_show": t1 - t0, "run_page": t2 - t1, "show_bytes": len(text),
                  "page_tasks": len(page["run"]["tasks"])}))
"""


# -- specs -------------------------------------------------------------------------------------


def compile_templates(tmp: Path) -> dict[str, dict[str, Any]]:
    import yaml
    from kfp import compiler

    src = tmp / "scale_pipelines.py"
    src.write_text(PIPELINES_SRC)
    sys.path.insert(0, str(tmp))
    import scale_pipelines  # type: ignore[import-not-found]

    out = {}
    for name in ("chain", "fan", "nested", "mesh"):
        p = tmp / f"{name}.yaml"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiler.Compiler().compile(getattr(scale_pipelines, name), str(p))
        out[name] = yaml.safe_load(p.read_text())
    return out


def build(shape: str, templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The PipelineSpec of a shape name (``fan10000``, ``nested100x100``...)."""
    if shape.startswith("chain"):
        return _chain(templates["chain"], int(shape[5:]))
    if shape.startswith("fan"):
        spec = copy.deepcopy(templates["fan"])
        (loop,) = spec["root"]["dag"]["tasks"].values()
        loop["parameterIterator"]["items"]["raw"] = json.dumps(list(range(int(shape[3:]))))
        return spec
    if shape.startswith("nested"):
        a, b = (int(x) for x in shape[6:].split("x"))
        spec = copy.deepcopy(templates["nested"])
        (outer,) = spec["root"]["dag"]["tasks"].values()
        outer["parameterIterator"]["items"]["raw"] = json.dumps(list(range(a)))
        inner_comp = spec["components"][outer["componentRef"]["name"]]
        (inner,) = inner_comp["dag"]["tasks"].values()
        inner["parameterIterator"]["items"]["raw"] = json.dumps(list(range(b)))
        return spec
    if shape.startswith("mesh"):
        return _mesh(templates["mesh"], int(shape[4:]))
    raise SystemExit(f"unknown shape {shape!r} (chainN, fanN, nestedAxB, meshN)")


def _chain(template: dict[str, Any], n: int) -> dict[str, Any]:
    spec = copy.deepcopy(template)
    tasks = spec["root"]["dag"]["tasks"]
    first = next(t for t in tasks.values() if "dependentTasks" not in t)
    then = next(t for t in tasks.values() if "dependentTasks" in t)
    new = {"s00000": copy.deepcopy(first)}
    for i in range(1, n):
        t = copy.deepcopy(then)
        prev = f"s{i - 1:05d}"
        t["dependentTasks"] = [prev]
        t["inputs"]["parameters"]["x"]["taskOutputParameter"]["producerTask"] = prev
        t["taskInfo"]["name"] = f"s{i:05d}"
        new[f"s{i:05d}"] = t
    spec["root"]["dag"]["tasks"] = new
    return spec


def _mesh(template: dict[str, Any], n: int, width: int = 100) -> dict[str, Any]:
    spec = copy.deepcopy(template)
    tasks = spec["root"]["dag"]["tasks"]
    src = next(t for t in tasks.values() if "dependentTasks" not in t)
    add = next(t for t in tasks.values() if "dependentTasks" in t)
    new: dict[str, Any] = {}
    for j in range(width):
        t = copy.deepcopy(src)
        t["inputs"]["parameters"]["a"]["runtimeValue"]["constant"] = j
        t["taskInfo"]["name"] = f"l0-{j}"
        new[f"l0-{j}"] = t
    for layer in range(1, n // width):
        for j in range(width):
            a, b = f"l{layer - 1}-{j}", f"l{layer - 1}-{(j + 1) % width}"
            t = copy.deepcopy(add)
            t["dependentTasks"] = sorted({a, b})
            t["inputs"]["parameters"]["a"]["taskOutputParameter"]["producerTask"] = a
            t["inputs"]["parameters"]["b"]["taskOutputParameter"]["producerTask"] = b
            t["taskInfo"]["name"] = f"l{layer}-{j}"
            new[f"l{layer}-{j}"] = t
    spec["root"]["dag"]["tasks"] = new
    return spec


# -- phases ------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WORKBENCH_HOME", None)
    return env


def engine(what: str, spec_path: Path, home: Path, profile: Path | None = None) -> dict[str, Any]:
    args = [sys.executable, "-c", ENGINE, what, str(spec_path), str(home)]
    if profile:
        args.append(str(profile))
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} {spec_path.name} failed:\n{proc.stderr[-3000:]}")
    result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    result["wall"] = time.perf_counter() - t0
    if result["status"] != "SUCCEEDED":
        raise RuntimeError(f"{what} {spec_path.name}: {result['status']}: {result['failures']}")
    return result


def kill_halfway(spec_path: Path, home: Path, total: int) -> int:
    """Start a first run, SIGKILL it (and its workers) once half its tasks succeeded."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ENGINE, "first", str(spec_path), str(home)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    db = home / "runs.db"
    done = 0
    try:
        while proc.poll() is None:
            time.sleep(0.2)
            if not db.exists():
                continue
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    done = c.execute(
                        "SELECT COUNT(*) FROM tasks WHERE status='SUCCEEDED' AND kind='container'"
                    ).fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= total // 2:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if done < total // 2:
        raise RuntimeError(f"the run ended before half its tasks were done ({done}/{total})")
    return done


def views(home: Path) -> dict[str, Any]:
    with sqlite3.connect(home / "runs.db") as c:
        (run_id,) = c.execute("SELECT run_id FROM runs ORDER BY created_at DESC").fetchone()
    proc = subprocess.run(
        [sys.executable, "-c", VIEWS, str(home), run_id],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"views failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_shape(
    shape: str, spec: dict[str, Any], phases: list[str], repeats: int, tmp: Path
) -> dict[str, Any]:
    spec_path = tmp / f"{shape}.json"
    spec_path.write_text(json.dumps(spec))
    samples: dict[str, list[dict[str, Any]]] = {p: [] for p in phases}
    for i in range(repeats):
        home = tmp / f"{shape}-{i}"
        if "first" in phases or "cached" in phases or "views" in phases:
            r = engine("first", spec_path, home)
            if "first" in phases:
                samples["first"].append(r)
            _say(shape, "first", r)
        if "cached" in phases:
            r = engine("cached", spec_path, home)
            samples["cached"].append(r)
            _say(shape, "cached", r)
        if "views" in phases:
            r = views(home)
            samples["views"].append(r)
            print(
                f"  {shape:14} views   runs show {r['runs_show']:.3f}s  run page "
                f"{r['run_page']:.3f}s",
                file=sys.stderr,
            )
        if "resume" in phases:
            rhome = tmp / f"{shape}-{i}-resume"
            total = samples["first"][-1]["tasks"] if samples.get("first") else 0
            total = total or int(engine_count(spec))
            done = kill_halfway(spec_path, rhome, total)
            r = engine("resume", spec_path, rhome)
            r["done_before"] = done
            samples["resume"].append(r)
            _say(shape, "resume", r)
    out: dict[str, Any] = {}
    for phase, rs in samples.items():
        if not rs:
            continue
        keys = [k for k, v in rs[0].items() if isinstance(v, (int, float)) and k != "failures"]
        out[phase] = {k: statistics.median(float(r[k]) for r in rs) for k in keys}
        out[phase]["n"] = len(rs)
    return out


def engine_count(spec: dict[str, Any]) -> int:
    """Executor tasks in a shape (for the resume's halfway mark)."""
    tasks = spec["root"]["dag"]["tasks"]
    if len(tasks) > 1:
        return len(tasks)
    (loop,) = tasks.values()
    n = len(json.loads(loop["parameterIterator"]["items"]["raw"]))
    comp = spec["components"][loop["componentRef"]["name"]]
    (inner,) = comp["dag"]["tasks"].values()
    if "parameterIterator" in inner:
        n *= len(json.loads(inner["parameterIterator"]["items"]["raw"]))
    return n


def _say(shape: str, phase: str, r: dict[str, Any]) -> None:
    per = 1000 * r["engine"] / max(1, r["tasks"])
    print(
        f"  {shape:14} {phase:7} {r['engine']:8.3f}s  {per:6.2f} ms/task  tasks {r['tasks']}"
        f"  ran {r['ran']}  cached {r['cached']}  rss {r['rss_mb']:.0f} MB",
        file=sys.stderr,
    )


def markdown(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| shape | phase | tasks | ran | engine (s) | per task (ms) | engine peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for shape, phases in results.items():
        for phase in ("first", "cached", "resume"):
            r = phases.get(phase)
            if not r:
                continue
            per = 1000 * r["engine"] / max(1, r["tasks"])
            rows.append(
                f"| {shape} | {phase} | {r['tasks']:.0f} | {r['ran']:.0f} | {r['engine']:.3f} "
                f"| {per:.2f} | {r['rss_mb']:.0f} |"
            )
    view_rows = [(s, p["views"]) for s, p in results.items() if p.get("views")]
    if view_rows:
        rows += ["", "| shape | `runs show --json` (s) | UI run page (s) |", "|---|---:|---:|"]
        rows += [f"| {s} | {v['runs_show']:.3f} | {v['run_page']:.3f} |" for s, v in view_rows]
    return "\n".join(rows)


def profile(target: str, tmp: Path, templates: dict[str, dict[str, Any]], top: int) -> None:
    import pstats

    shape, _, phase = target.partition(":")
    spec_path = tmp / f"{shape}.json"
    spec_path.write_text(json.dumps(build(shape, templates)))
    home = tmp / f"{shape}-profile"
    prof = tmp / "profile.out"
    if phase == "cached":
        engine("first", spec_path, home)
    r = engine(phase or "first", spec_path, home, profile=prof)
    _say(shape, phase or "first", r)
    stats = pstats.Stats(str(prof))
    stats.sort_stats("tottime").print_stats(top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    ap.add_argument("--phases", default=DEFAULT_PHASES)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table")
    ap.add_argument("--json", action="store_true", help="print the medians as JSON")
    ap.add_argument("--profile", metavar="SHAPE:PHASE", help="cProfile one phase instead")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-scale-") as tmpdir:
        tmp = Path(tmpdir)
        templates = compile_templates(tmp)
        if args.profile:
            profile(args.profile, tmp, templates, args.top)
            return 0
        phases = [p for p in args.phases.split(",") if p]
        results = {}
        for shape in args.shapes.split(","):
            results[shape] = run_shape(shape, build(shape, templates), phases, args.repeats, tmp)
    if args.json:
        print(json.dumps(results, indent=2))
    if args.markdown or not args.json:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
