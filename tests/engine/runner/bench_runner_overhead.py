"""Micro-benchmark: the task runner's own overhead per attempt of a no-op lightweight component.

Not a test (pytest does not collect it); run it by hand and read the numbers:

    .venv/bin/python tests/engine/runner/bench_runner_overhead.py [--attempts 200]

It times ``TaskRunner.submit(spec).result()`` for a compiled no-op component
(serially, after warm-up), ``N`` no-ops submitted at once, ``N`` one-second
naps submitted at once (parallel attempts must not serialize), and, for
scale, the same attempt as a cold ``python -m kfp.dsl.executor_main`` process,
which is what a pod or kfp.local's SubprocessRunner starts per task.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore", message="The default base_image")

from kfp import dsl  # noqa: E402
from runner_helpers import make_spec  # noqa: E402

from workbench_dsl.engine.runner import TaskRunner  # noqa: E402
from workbench_dsl.paths import LocalRoot  # noqa: E402


@dsl.component
def noop():
    pass


@dsl.component
def nap(seconds: float):
    import time

    time.sleep(seconds)


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(len(values) * 0.9) - 1]
    return f"median {statistics.median(values) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    template = make_spec(noop, tmp, task="template")

    def spec(i: int, component=noop, **kw):  # type: ignore[no-untyped-def]
        return make_spec(component, tmp, task=f"t{i}", **kw)

    specs = [spec(i) for i in range(args.attempts)]
    with TaskRunner(LocalRoot(tmp / "root")) as runner:
        start = time.perf_counter()
        runner.warmup()
        first = runner.submit(spec(-1)).result()
        print(
            f"first attempt (worker start, kfp import): {(time.perf_counter() - start) * 1000:.0f} ms"
        )
        assert first.status == "SUCCEEDED", first.error
        times = []
        for s in specs:
            t0 = time.perf_counter()
            outcome = runner.submit(s).result()
            times.append(time.perf_counter() - t0)
            assert outcome.status == "SUCCEEDED", outcome.error
        print(f"serial no-op attempts ({len(times)}): {_ms(times)}")

        burst = [spec(1000 + i) for i in range(args.parallel)]
        t0 = time.perf_counter()
        for f in [runner.submit(s) for s in burst]:
            assert f.result().status == "SUCCEEDED"
        print(f"{args.parallel} no-ops at once: {(time.perf_counter() - t0) * 1000:.0f} ms in all")

        naps = [spec(2000 + i, nap, params={"seconds": 1.0}) for i in range(args.parallel)]
        t0 = time.perf_counter()
        for f in [runner.submit(s) for s in naps]:
            assert f.result().status == "SUCCEEDED"
        print(f"{args.parallel} one-second naps at once: {time.perf_counter() - t0:.2f} s")

    # The same attempt as a cold process, for scale.
    command = template.executor["container"]["command"]
    source, module_dir = command[-1], tmp / "cold"
    module_dir.mkdir()
    (module_dir / "ephemeral_component.py").write_text(source)
    cold = []
    for i in range(5):
        s = spec(3000 + i)
        s.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kfp.dsl.executor_main",
                "--component_module_path",
                str(module_dir / "ephemeral_component.py"),
                "--executor_input",
                json.dumps(s.executor_input),
                "--function_to_execute",
                "noop",
            ],
            check=True,
            capture_output=True,
            cwd=s.workdir,
            env={**os.environ, "_KFP_RUNTIME": "true"},  # as the pod's command line sets it
        )
        cold.append(time.perf_counter() - t0)
    print(f"cold `python -m kfp.dsl.executor_main` per attempt: {_ms(cold)}")


if __name__ == "__main__":
    main()
