"""Benchmark a local endpoint with a canary against a bare KServe ModelServer serving the same model.

    python bench/serve.py                 # 5 rounds of 2000 requests each, 8 connections, V2
    python bench/serve.py --protocol v1 --rounds 3 --requests 1000

Both servers run the same scikit-learn model (logistic regression on the
bundled breast-cancer data, 30 features, one instance per request), both on
127.0.0.1 with the same logging (no per-request access log), one uvicorn
worker each. The bare server is KServe's ``ModelServer`` REST server with a
model that does what KServe's sklearn server does (``get_predict_input`` ->
``predict`` -> ``get_predict_response``). The endpoint is what ``@serve`` /
``deploy`` start: the same server plus the canary router (stable + 10% canary),
the request guard and per-revision metrics. Rounds alternate between the two;
the table shows medians over rounds of p50/p99 latency and requests/s. Then
10,000 requests go to the endpoint and the share the canary served is
compared with the setting. Everything runs on this machine, against 127.0.0.1
only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BARE_SERVER = r"""
import asyncio, logging, os, pickle, sys, warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
import kserve.model_server
from kserve import Model, ModelServer
from kserve.protocol.rest.server import RESTServer
from kserve.utils.utils import get_predict_input, get_predict_response

port, model_dir = int(sys.argv[1]), sys.argv[2]

class SKLearnModel(Model):  # as kserve's sklearnserver does it
    def __init__(self, name):
        super().__init__(name)
        with open(os.path.join(model_dir, "model.pkl"), "rb") as f:
            self._model = pickle.load(f)
        self.ready = True
    def predict(self, payload, headers=None):
        return get_predict_response(payload, self._model.predict(get_predict_input(payload)), self.name)

server = ModelServer(http_port=port, enable_grpc=False, workers=1, grace_period=3, enable_latency_logging=False)
server.register_model(SKLearnModel("bare"))
rest = RESTServer("kserve.model_server:app", server.dataplane, server.model_repository_extension, port, grace_period=3)
rest.config.host = "127.0.0.1"
logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
logging.getLogger("kserve.trace").setLevel(logging.WARNING)
asyncio.run(rest.start())
"""


def _models(base: Path) -> tuple[str, str, list[list[float]]]:
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    dirs = []
    for c in (1.0, 0.1):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, y)
        path = base / f"model-c{c}"
        mlflow.sklearn.save_model(
            model, path, serialization_format="pickle", pip_requirements=["scikit-learn"]
        )
        dirs.append(str(path))
    return dirs[0], dirs[1], X[:50].tolist()


def _body(protocol: str, row: list[float]) -> bytes:
    if protocol == "v1":
        return json.dumps({"instances": [row]}).encode()
    return json.dumps(
        {"inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": row}]}
    ).encode()


def _path(protocol: str, name: str) -> str:
    return f"/v1/models/{name}:predict" if protocol == "v1" else f"/v2/models/{name}/infer"


async def _load(port: int, path: str, bodies: list[bytes], n: int, conns: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    revisions: Counter[str] = Counter()
    errors = 0
    queue = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        url = f"http://127.0.0.1:{port}{path}"
        headers = {"content-type": "application/json"}
        for i in queue:
            start = time.perf_counter()
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
                revisions[resp.headers.get("x-workbench-revision", "-")] += 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=conns)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(conns)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": n / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
        "revisions": revisions,
    }


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), to compare servers on a busy machine."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    port: int, path: str, bodies: list[bytes], n: int, conns: int, pid: int
) -> dict[str, Any]:
    before = _cpu_seconds(pid)
    result = asyncio.run(_load(port, path, bodies, n, conns))
    after = _cpu_seconds(pid)
    result["cpu_us"] = None if before is None or after is None else (after - before) / n * 1e6
    return result


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the bare server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the bare server did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="per round and server")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--canary-requests", type=int, default=10_000)
    parser.add_argument("--canary-percent", type=int, default=10)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["WORKBENCH_HOME"] = str(base / "home")
        from workbench_dsl.backends.deployer import DeploySpec
        from workbench_dsl.backends.deployer._process import free_port
        from workbench_dsl.backends.deployer.local import LocalDeployer
        from workbench_dsl.paths import LocalRoot

        stable_dir, canary_dir, rows = _models(base)
        deployer = LocalDeployer(LocalRoot(base / "home"))
        bare = None
        try:
            for uri, path, pct in (
                ("models:/bench/1", stable_dir, 100),
                ("models:/bench/2", canary_dir, args.canary_percent),
            ):
                deployer.deploy(
                    DeploySpec(
                        endpoint="bench",
                        model_uri=uri,
                        storage=path,
                        flavor="sklearn",
                        protocol=args.protocol,
                        canary_percent=pct,
                    )
                )
            info = deployer.get("bench")
            endpoint_port = int(info.url.split(":")[2].split("/")[0])
            bare_port = free_port({endpoint_port})
            with open(base / "bare.log", "wb") as log:
                bare = subprocess.Popen(
                    [sys.executable, "-c", BARE_SERVER, str(bare_port), stable_dir],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _wait(bare_port, bare)
            bodies = [_body(args.protocol, r) for r in rows]
            endpoint_pid = deployer.store.get("bench").pid  # type: ignore[union-attr]
            targets = {
                "bare KServe ModelServer": (bare_port, _path(args.protocol, "bare"), bare.pid),
                f"endpoint, stable + {args.canary_percent}% canary": (
                    endpoint_port,
                    _path(args.protocol, "bench"),
                    endpoint_pid or 0,
                ),
            }
            for port, path, _pid in targets.values():  # warm up both
                asyncio.run(_load(port, path, bodies, 300, args.connections))
            results: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
            for _ in range(args.rounds):
                for name, (port, path, pid) in targets.items():
                    r = _measure(port, path, bodies, args.requests, args.connections, pid)
                    assert r["errors"] == 0, r
                    results[name].append(r)
            share = asyncio.run(
                _load(
                    endpoint_port,
                    targets[list(targets)[1]][1],
                    bodies,
                    args.canary_requests,
                    args.connections,
                )
            )
        finally:
            if bare is not None:
                bare.terminate()
                bare.wait(10)
            deployer.stop_all()

    print(
        f"### Local endpoint vs bare KServe ModelServer ({args.protocol.upper()}, "
        f"{args.rounds} rounds x {args.requests} requests, {args.connections} connections, "
        f"{os.cpu_count()} CPUs)\n"
    )
    print("| server | p50 ms | p99 ms | requests/s | server CPU per request |")
    print("|---|---:|---:|---:|---:|")
    med: dict[str, float] = {}
    cpu: dict[str, float | None] = {}
    for name, rounds in results.items():
        p50 = statistics.median(r["p50_ms"] for r in rounds)
        p99 = statistics.median(r["p99_ms"] for r in rounds)
        rps = statistics.median(r["rps"] for r in rounds)
        cpus = [r["cpu_us"] for r in rounds if r["cpu_us"] is not None]
        cpu[name] = statistics.median(cpus) if cpus else None
        med[name] = rps
        shown = f"{cpu[name]:.0f} us" if cpu[name] is not None else "-"
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {rps:.0f} | {shown} |")
    bare_rps, endpoint_rps = med.values()
    print(f"\nThroughput ratio endpoint / bare: **{endpoint_rps / bare_rps:.2f}x** (goal >= 0.9x)")
    bare_cpu, endpoint_cpu = cpu.values()
    if bare_cpu and endpoint_cpu:
        print(
            f"Server CPU per request, bare / endpoint: **{bare_cpu / endpoint_cpu:.2f}x** "
            f"(the throughput one server core allows, whatever else the machine runs)"
        )
    print()
    canary = sum(v for k, v in share["revisions"].items() if k.endswith("00002"))
    total = sum(share["revisions"].values())
    observed = 100.0 * canary / total
    print(
        f"Canary share over {total} requests: **{observed:.2f}%** (setting {args.canary_percent}%, "
        f"goal within 2 points); errors: {share['errors']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
