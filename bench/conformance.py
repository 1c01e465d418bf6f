"""Run KFP's compiled test pipelines through `workbench run` and print a table.

    python bench/conformance.py /tmp/kfp_testdata/test_data/sdk_compiled_pipelines/valid

runs every ``*.yaml`` in ``critical/`` and ``local_execution/`` (``--all``: every
``*.yaml`` below it) under the given directory (KFP's
``test_data/sdk_compiled_pipelines/valid``; the files are not part of this
repository), each with a fresh ``WORKBENCH_HOME`` holding the secrets KFP's own
end-to-end harness creates (``SECRETS``), a value for every required parameter
and a small file for every required input artifact, and prints pipeline,
status, seconds, its outcome (succeeded, fails as intended, refused before
running, other) and the outputs or the reason it did not succeed. A run is cut
after ``--timeout`` seconds, or after its entry in ``LIMITS`` for pipelines that
sleep or install for longer by design. ``--markdown`` prints the table as
Markdown; ``--json`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SUBDIRS = ("critical", "local_execution")


# Required parameters some pipelines take (paths the test harness would give).
def _params_for(name: str, tmp: Path) -> list[str]:
    return {
        "add_numbers.yaml": ["a=1", "b=2"],
        # KFP's proxy test gives this value (backend/test/end2end/pipeline_e2e_test.go,
        # "Create a pipeline run with HTTP proxy") and expects FAILED without a proxy.
        "env-var.yaml": ["env_var=http_proxy"],
        "local_execution_pipeline_with_retry.yaml": [f"counter_path={tmp / 'counter.txt'}"],
        "local_execution_pipeline_with_ignore_upstream_failure.yaml": [
            f"marker_path={tmp / 'marker.txt'}"
        ],
    }.get(name, [])


# KFP's end-to-end harness gives every required parameter without a default a value of
# its type (backend/test/testutil/pipeline_run_utils.go, GetPipelineRunTimeInputs); so
# does this one, with fixed values rather than random ones.
_FILL = {
    "NUMBER_INTEGER": "7",
    "NUMBER_DOUBLE": "0.5",
    "BOOLEAN": "true",
    "STRUCT": '{"A": "0.25", "B": "0.75"}',
    "LIST": '["workbench-conformance"]',
}


def _required_params(path: Path, given: list[str]) -> list[str]:
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []
    root = next((d.get("root") for d in docs if "root" in d), None) or {}
    defs = (root.get("inputDefinitions") or {}).get("parameters") or {}
    named = {g.split("=", 1)[0] for g in given}
    return [
        f"{name}={_FILL.get(str(d.get('parameterType')), 'workbench-conformance')}"
        for name, d in defs.items()
        if name not in named and "defaultValue" not in d and not d.get("isOptional")
    ]


def _required_inputs(path: Path, tmp: Path) -> list[str]:
    """A small file for each required pipeline input artifact, as parameters get a value."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []
    root = next((d.get("root") for d in docs if "root" in d), None) or {}
    defs = (root.get("inputDefinitions") or {}).get("artifacts") or {}
    out = []
    for name, d in defs.items():
        if d.get("isOptional"):
            continue
        f = tmp / "inputs" / name
        f.parent.mkdir(exist_ok=True)
        f.write_text("workbench-conformance\n")
        out.append(f"{name}={f}")
    return out


# Pipelines that run longer than the default limit by design: seconds to allow.
LIMITS = {
    "long-running.yaml": 900,  # two `sleep 300` steps in a row
    "take_nap_compiled.yaml": 1200,  # take_nap(naptime_secs=900), then wake_up
    "take_nap_pipeline_root_compiled.yaml": 1200,  # the same, with a pipeline root
    "log_streaming_compiled.yaml": 300,  # prints in a loop for 60 s
    "iris_pipeline_compiled.yaml": 300,  # installs pandas and scikit-learn on first use
    "notebook_component_simple.yaml": 300,  # installs nbclient and ipykernel
    "notebook_component_mixed.yaml": 300,
}


# What a correct run gives, from each pipeline's .py beside its .yaml.
def _task(result: dict, name: str) -> dict:
    return next((t for t in result["tasks"] if t["name"].rsplit("/", 1)[-1] == name), {})


EXPECT = {
    "add_numbers.yaml": lambda r, tmp: r["outputs"] == {"Output": 3},
    "parameters_simple.yaml": lambda r, tmp: r["outputs"] == {"Output": [2, 4, 6]},
    "pipeline_with_workspace.yaml": lambda r, tmp: (
        r["outputs"] == {"Output": "Hello from workspace!"}
    ),
    "pipeline_with_importer_workspace.yaml": lambda r, tmp: (
        r["outputs"] == {"dir_result": "part-000.txt,part-001.txt", "train_result": "123"}
    ),
    "local_execution_pipeline_with_k8s_only_methods.yaml": lambda r, tmp: (
        r["outputs"] == {"Output": "hello"}
    ),
    "local_execution_pipeline_with_oneof.yaml": lambda r, tmp: (
        r["outputs"] == {"Output": "selected:A"}
    ),
    "local_execution_pipeline_with_retry.yaml": lambda r, tmp: (
        r["outputs"] == {"Output": "attempt=2"}
    ),
    "pipeline_with_caching.yaml": lambda r, tmp: r["outputs"] == {"Output": 2},
    "pipeline_with_collected_artifacts.yaml": lambda r, tmp: r["outputs"] == {"Output": "0,1,2"},
    "local_execution_pipeline_with_exit_handler.yaml": lambda r, tmp: (
        _task(r, "record-exit").get("status") == "SUCCEEDED"
    ),
    # The upstream task fails on purpose; the run fails, the cleanup task still runs.
    "local_execution_pipeline_with_ignore_upstream_failure.yaml": lambda r, tmp: (
        r["status"] == "FAILED"
        and _task(r, "write-marker").get("status") == "SUCCEEDED"
        and (tmp / "marker.txt").read_text() == "cleanup_ran"
    ),
}


# Pipelines whose run FAILS on a cluster as their authors meant, and what must hold then.
def _failed(r: dict, name: str) -> bool:
    return r["status"] == "FAILED" and _task(r, name).get("status") == "FAILED"


def _ran(r: dict, name: str) -> bool:
    return _task(r, name).get("status") == "SUCCEEDED"


EXPECT.update(
    {
        # KFP's E2eFailed suite (valid/failing/) expects FAILED.
        "fail_v2.yaml": lambda r, tmp: _failed(r, "fail"),
        "pipeline_with_exit_handler.yaml": lambda r, tmp: (
            _failed(r, "fail-op") and _ran(r, "print-op")
        ),
        "pipeline_with_multiple_exit_handlers.yaml": lambda r, tmp: (
            _failed(r, "fail-op") and _ran(r, "print-op")
        ),
        # A step fails on purpose; the exit task or the cleanup task still runs.
        "pipeline_as_exit_task.yaml": lambda r, tmp: (
            _failed(r, "fail-op") and _ran(r, "get-run-state")
        ),
        "pipeline_with_task_final_status.yaml": lambda r, tmp: (
            _failed(r, "fail-op") and _ran(r, "exit-op")
        ),
        "pipeline_with_task_using_ignore_upstream_failure.yaml": lambda r, tmp: (
            _failed(r, "fail-op") and _ran(r, "print-op")
        ),
        # With env_var=http_proxy KFP's test expects FAILED unless a proxy is configured.
        "env-var.yaml": lambda r, tmp: (
            _ran(r, "comp") if os.environ.get("http_proxy") else _failed(r, "comp")
        ),
        # Its last task reads env vars nobody sets and wants "": a pod gives it none
        # (only configured fieldPathAsEnv entries are added, backend/src/v2/driver/k8s.go),
        # so on a cluster it fails exactly so; the two tasks with field paths succeed.
        "create_pod_metadata_complex.yaml": lambda r, tmp: (
            _failed(r, "validate-no-pod-metadata")
            and _ran(r, "validate-pod-metadata")
            and _ran(r, "validate-pod-metadata-2")
        ),
    }
)
EXPECTED_FAILURE = {
    "local_execution_pipeline_with_ignore_upstream_failure.yaml",
    "fail_v2.yaml",
    "pipeline_with_exit_handler.yaml",
    "pipeline_with_multiple_exit_handlers.yaml",
    "pipeline_as_exit_task.yaml",
    "pipeline_with_task_final_status.yaml",
    "pipeline_with_task_using_ignore_upstream_failure.yaml",
    "env-var.yaml",
    "create_pod_metadata_complex.yaml",
}


def _workbench() -> list[str]:
    exe = Path(sys.executable).with_name("workbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "workbench_dsl"]


# The secrets KFP's end-to-end harness creates in the namespace before every pipeline
# (backend/test/end2end/pipeline_e2e_test.go): here, with `workbench secrets set`.
SECRETS = {
    "test-secret-1": {"username": "user1"},
    "test-secret-2": {"password": "psw1"},
    "test-secret-3": {"password": "psw2"},
}


def _set_secrets(home: Path) -> None:
    from workbench_dsl.engine.kube_objects import ObjectStore

    for name, data in SECRETS.items():
        ObjectStore(home, "secret").set(name, data)


def run_one(path: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="wb-conf-") as tmp:
        env = dict(os.environ, WORKBENCH_HOME=str(Path(tmp) / "home"))
        (Path(tmp) / "home").mkdir(mode=0o700)
        _set_secrets(Path(tmp) / "home")
        cmd = [*_workbench(), "run", str(path), "--json"]
        params = _params_for(path.name, Path(tmp))
        for p in [*params, *_required_params(path, params)]:
            cmd += ["-p", p]
        for i in _required_inputs(path, Path(tmp)):
            cmd += ["--input", i]
        timeout = max(timeout, LIMITS.get(path.name, 0))
        t0 = time.time()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            return {
                "pipeline": path.name,
                "status": "TIMEOUT",
                "seconds": timeout,
                "detail": f"did not finish in {timeout:g}s",
            }
        seconds = round(time.time() - t0, 2)
        notes = [ln[6:] for ln in proc.stderr.splitlines() if ln.startswith("note: ")]
        if proc.returncode == 2:
            lines = proc.stderr.splitlines()
            start = next((i for i, ln in enumerate(lines) if ln.startswith("error: ")), None)
            if start is None:
                err = "error: " + proc.stderr.strip()[-300:]
            else:  # the preflight lists every problem on its own line below the first
                more = [ln.strip()[2:] for ln in lines[start + 1 :] if ln.startswith("  - ")]
                err = lines[start] + (" " + "; ".join(more) if more else "")
            return {
                "pipeline": path.name,
                "status": "REFUSED",
                "seconds": seconds,
                "detail": err[7:],
            }
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return {
                "pipeline": path.name,
                "status": f"ERROR (exit {proc.returncode})",
                "seconds": seconds,
                "detail": proc.stderr.strip()[-400:],
            }
        if result["status"] == "SUCCEEDED":
            detail = (
                json.dumps(result["outputs"], default=str) if result["outputs"] else "(no outputs)"
            )
        else:
            fails = [ln[2:] for ln in proc.stderr.splitlines() if ln.startswith("✗ ")]
            detail = "; ".join(fails) or result["status"]
        check = EXPECT.get(path.name)
        verdict = ""
        if check is not None:
            try:
                good = bool(check(result, Path(tmp)))
            except Exception as e:  # a missing file, a missing key
                good, detail = False, f"{detail} (check failed: {e})"
            verdict = "as expected" if good else "WRONG RESULT"
            if good and path.name in EXPECTED_FAILURE:
                detail = f"fails as intended: {detail}"
        ntasks = len(result["tasks"])
        return {
            "pipeline": path.name,
            "status": result["status"],
            "seconds": seconds,
            "tasks": ntasks,
            "detail": detail,
            "verdict": verdict,
            "notes": notes,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path, help="KFP's test_data/sdk_compiled_pipelines/valid")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "-k", dest="pattern", default="", help="only pipelines whose file name contains this"
    )
    ap.add_argument(
        "--all", action="store_true", help="every *.yaml under the directory, not only critical/"
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="pipelines run at once (those with a long limit, mostly asleep, start first)",
    )
    args = ap.parse_args()
    files = []
    if args.all:
        files = sorted(
            p
            for p in args.directory.rglob("*.yaml")
            if args.pattern in str(p.relative_to(args.directory))
        )
    for sub in () if args.all else SUBDIRS:
        d = args.directory / sub
        if not d.is_dir():
            print(f"error: {d} is not a directory", file=sys.stderr)
            return 2
        files += sorted(p for p in d.glob("*.yaml") if args.pattern in p.name)

    def one(f: Path) -> dict:
        row = run_one(f, args.timeout)
        row["pipeline"] = str(f.relative_to(args.directory))
        row["outcome"] = outcome(row)
        print(f"{row['status']:<10} {row['seconds']:>7.2f}s  {row['pipeline']}", file=sys.stderr)
        return row

    order = sorted(files, key=lambda f: -LIMITS.get(f.name, 0))
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        done = dict(zip(order, pool.map(one, order), strict=True))
    rows = [done[f] for f in files]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print("| pipeline | status | seconds | outcome | outputs or reason |")
        print("|---|---|---:|---|---|")
        for r in rows:
            detail = str(r["detail"]).replace("|", "\\|").replace("\n", " ")
            print(
                f"| {r['pipeline']} | {r['status']} | {r['seconds']:.2f} | {r['outcome']} "
                f"| {detail} |"
            )
    else:
        for r in rows:
            print(
                f"{r['pipeline']:<72} {r['status']:<10} {r['seconds']:>7.2f}  "
                f"{r['outcome']:<18} {r['detail']}"
            )
    counts = {k: sum(r["outcome"] == k for r in rows) for k in OUTCOMES}
    print(
        f"\n{counts['succeeded'] + counts['fails as intended']}/{len(rows)} end as KFP intends "
        f"({counts['succeeded']} succeeded, {counts['fails as intended']} fail as intended); "
        f"{counts['refused']} refused before running; {counts['other']} other",
        file=sys.stderr,
    )
    return 0


OUTCOMES = ("succeeded", "fails as intended", "refused", "other")


def outcome(row: dict) -> str:
    """Where a row lands: as KFP intends (success, or the failure it means), refused, other."""
    if row.get("verdict") == "WRONG RESULT":
        return "other"
    if row["status"] == "SUCCEEDED":
        return "succeeded"
    if row["status"] == "FAILED" and row.get("verdict") == "as expected":
        return "fails as intended"
    return "refused" if row["status"] == "REFUSED" else "other"


if __name__ == "__main__":
    sys.exit(main())
