"""The retrain-on-drift loop end to end, with real processes, registry, endpoint and scheduler.

`workbench recipe run retrain-on-drift --approve` runs train-deploy (no endpoint yet) and
adds the drift trigger; drifted traffic goes to the endpoint; a scheduler pass (this
process, as `workbench scheduler` would) sees the drift and starts the retraining run; the
challenger beats the champion on the same held-out data; a person outside the run
approves it; the new version takes the endpoint's canary share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

MODEL = "cancer-classifier"
SHIFT = 1.5  # the demo's drift: every value scaled by 1 + demo_shift (0.5)


def _setup(home: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(home)
    command = ["recipe", "run", "retrain-on-drift", "--approve", "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _drifted_rows(n: int) -> list[list[float]]:
    """Rows in the endpoint's input format (train-deploy's columns), scaled like the demo."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train_part, test_part = train_test_split(
        frame, test_size=0.25, random_state=0, stratify=frame["target"]
    )
    X = train_part.drop(columns=["target"])
    columns = X.columns[SelectKBest(f_classif, k=10).fit(X, train_part["target"]).get_support()]
    return (test_part[columns].to_numpy()[:n] * SHIFT).tolist()  # type: ignore[no-any-return]


def _post(url: str, rows: list[list[float]]) -> str:
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), len(rows[0])],
                "datatype": "FP64",
                "data": [v for row in rows for v in row],
            }
        ]
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["x-workbench-revision"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_drifted_traffic_retrains_and_the_challenger_takes_the_canary_share(
    workbench_home: Path,
) -> None:
    from workbench_dsl.backends import approvals
    from workbench_dsl.backends.deployer import local_deployer
    from workbench_dsl.backends.drift import report as drift_report
    from workbench_dsl.backends.registry import open_registry
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import local_root
    from workbench_dsl.schedule.local import LocalScheduler
    from workbench_dsl.schedule.trigger_store import TriggerStore

    scheduler = None
    try:
        first = _setup(workbench_home)
        assert first["required_run"]["status"] == "SUCCEEDED"
        assert first["trigger_added"] is True
        assert first["trigger"]["on"] == f"drift:{MODEL}"
        url = first["required_run"]["outputs"]["endpoint_url"]
        # Idempotent: the endpoint and the trigger are kept (in this process: it is quicker).
        result = CliRunner().invoke(app, ["recipe", "run", "retrain-on-drift", "--json"])
        assert result.exit_code == 0, result.output
        again = json.loads(result.stdout)
        assert again["endpoint_action"] == "exists" and again["trigger_added"] is False
        assert "required_run" not in again

        rows = _drifted_rows(120)
        for start in range(0, 120, 40):
            _post(url, rows[start : start + 40])

        scheduler = LocalScheduler()
        drift_report._cache.clear()
        started = scheduler.run_once().started
        assert len(started) == 1 and "retrain-on-drift" in started[0], started

        # A person outside the run approves what the retraining run registered.
        registry = open_registry()
        deadline = time.monotonic() + 150
        waiting: list[Any] = []
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.5)
            waiting = [p for p in approvals.pending(registry) if p.state == "pending"]
        assert [(p.model, p.version) for p in waiting] == [(MODEL, "2")]
        approvals.decide(registry, MODEL, "2", approve=True, comment="retrained on drift")
        while scheduler.triggers.busy() and time.monotonic() < deadline:
            time.sleep(0.5)
            drift_report._cache.clear()
            assert scheduler.run_once().started == []  # the same drift episode: no second run

        store = TriggerStore(local_root().runs_db)
        firings = [dict(r) for r in store.firings(store.get_trigger("retrain-on-drift").id)]
        store.close()
        assert [f["status"] for f in firings] == ["SUCCEEDED"], firings
        runs = RunStore(local_root().runs_db)
        run = runs.get_run(firings[0]["run_id"])
        runs.close()
        assert run is not None and run["pipeline"] == "retrain-on-drift"

        v2 = registry.get_version(MODEL, "2")
        assert v2.aliases == ("production", "staging")
        assert v2.tags["workbench.champion.verdict"] == "passed"
        assert v2.tags["workbench.champion.version"] == "1"
        champion = json.loads(v2.tags["workbench.champion.metrics"])["accuracy"]
        assert json.loads(v2.tags["workbench.challenger.metrics"])["accuracy"] >= champion + 0.01

        endpoint = local_deployer().get(MODEL)
        assert endpoint.canary == f"{MODEL}-predictor-00002"
        assert endpoint.canary_percent == 10
        served = [_post(url, rows[i : i + 1]) for i in range(20)]
        assert served.count(f"{MODEL}-predictor-00002") == 2, served
    finally:
        if scheduler is not None:
            scheduler.close()
        local_deployer().stop_all()
