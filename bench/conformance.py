"""Run KFP's compiled test pipelines through `workbench run` and print a table.

    python bench/conformance.py /tmp/kfp_testdata/test_data/sdk_compiled_pipelines/valid

runs every ``*.yaml`` in ``critical/`` and ``local_execution/`` (``--all``: every
``*.yaml`` below it) under the given directory (KFP's ``test_data/sdk_compiled_pipelines/valid``; the files are not
part of this repository), each with a fresh ``WORKBENCH_HOME`` holding the
secrets KFP's own end-to-end harness creates (``SECRETS``), and prints
pipeline, status, seconds, and the outputs or the reason it did not succeed.
``--markdown`` prints the table as Markdown; ``--json`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUBDIRS = ("critical", "local_execution")


# Required parameters some pipelines take (paths the test harness would give).
def _params_for(name: str, tmp: Path) -> list[str]:
    return {
        "add_numbers.yaml": ["a=1", "b=2"],
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
EXPECTED_FAILURE = {"local_execution_pipeline_with_ignore_upstream_failure.yaml"}


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
                detail = f"expected failure, cleanup ran: {detail}"
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
    rows = []
    for f in files:
        row = run_one(f, args.timeout)
        row["pipeline"] = str(f.relative_to(args.directory))
        rows.append(row)
        print(f"{row['status']:<10} {row['seconds']:>7.2f}s  {row['pipeline']}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        print("| pipeline | status | seconds | checked | outputs or reason |")
        print("|---|---|---:|---|---|")
        for r in rows:
            detail = str(r["detail"]).replace("|", "\\|").replace("\n", " ")
            print(
                f"| {r['pipeline']} | {r['status']} | {r['seconds']:.2f} | {r.get('verdict', '')} "
                f"| {detail} |"
            )
    else:
        for r in rows:
            print(
                f"{r['pipeline']:<72} {r['status']:<10} {r['seconds']:>7.2f}  "
                f"{r.get('verdict', ''):<12} {r['detail']}"
            )
    ok = sum(r["status"] == "SUCCEEDED" for r in rows)
    print(f"\n{ok}/{len(rows)} succeeded", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
