"""End to end: a real train -> register -> serve run, real traffic through the endpoint, the
request log, the training data found through the run's lineage, and `workbench endpoints drift`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench_dsl.backends.deployer import DeploySpec, local_deployer
from workbench_dsl.backends.deployer.requestlog import log_dir, read_requests, segments
from workbench_dsl.backends.drift.reference import find_reference
from workbench_dsl.cli.app import app
from workbench_dsl.paths import local_root

PIPELINE = Path(__file__).parent / "pipelines" / "drift_serve.py"
NAME = "drift-demo"


def _traffic(token: str, n: int, shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    deployer = local_deployer()
    for _ in range(n):
        size = rng.normal(10 + shift, 2, 10)
        colour = rng.choice([0, 1, 2], 10, p=[0.5, 0.3, 0.2]).astype(float)
        data = np.column_stack([size, colour]).ravel().tolist()
        body = {"inputs": [{"name": "x", "shape": [10, 2], "datatype": "FP64", "data": data}]}
        status, _, _ = deployer.predict(NAME, body, token=token)
        assert status == 200


def _drift(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["endpoints", "drift", NAME, *args])
    return r.exit_code, r.output


@pytest.mark.slow
def test_drift_of_a_served_model_against_its_training_data(
    workbench_home: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(workbench_home)
    run = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "run", str(PIPELINE), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    deployer = local_deployer()
    try:
        root = local_root()
        info = deployer.get(NAME)
        ref = find_reference(root, NAME, str(info.stable), "models:/drift-demo/1")
        assert ref.dataset == "drift-serve/make-data/data"  # not the held-out part
        assert ref.chain[1:5] == [
            "models:/drift-demo/1",
            "drift-serve.evaluate",
            "drift-serve/fit/model",
            "drift-serve.fit",
        ]
        assert ref.metadata.get("label") == "label"

        token = deployer.rotate_token(NAME)
        _traffic(token, 10, shift=0.0, seed=1)
        code, out = _drift("--json")
        assert code == 0, out
        doc = json.loads(out)
        assert (doc["drifted"], doc["instances"], doc["requests"]) == (False, 100, 10)
        assert [f["feature"] for f in doc["features"]] == ["size", "colour"]
        assert [f["test"] for f in doc["features"]] == ["ks", "chi2"]

        middle = time.time()
        _traffic(token, 10, shift=5.0, seed=2)
        code, out = _drift("--since", time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(middle)))
        assert code == 0, out
        assert "size" in out and "DRIFTED" in out and "1 of 2 feature(s) drifted" in out

        directory = log_dir(root.endpoints / NAME)
        assert len(list(read_requests(directory))) == 20
        for seg in segments(directory):
            assert stat.S_IMODE(seg.stat().st_mode) == 0o600
            text = seg.read_text()
            assert token not in text and "authorization" not in text.lower()

        # off: the same model again with log_requests=False; the running server re-reads it
        row = deployer.store.revision(NAME, str(info.stable))
        assert row is not None
        spec = DeploySpec(
            endpoint=NAME,
            model_uri=row.model_uri,
            storage=row.storage,
            flavor=row.flavor,
            predictor_source=row.predictor_source,
            predictor_name=row.predictor_name,
            auth="token",
            log_requests=False,
        )
        assert deployer.deploy(spec).unchanged
        off = datetime.fromtimestamp(time.time()).isoformat()
        _traffic(token, 3, shift=0.0, seed=3)
        assert len(list(read_requests(directory))) == 20

        code, out = _drift("--revision", "nope")
        assert code == 2 and "no revision 'nope'" in out
        code, out = _drift("--since", off, "--min-requests", "5")
        assert code == 2 and "too few logged requests" in out and "log_requests=False" in out
    finally:
        deployer.stop_all()
