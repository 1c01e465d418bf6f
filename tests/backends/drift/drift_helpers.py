"""A local root with a served revision, its lineage and logged traffic, written as a run would.

The lineage events have the shape the engine's observer writes (see the real run in
test_drift_e2e.py, which checks the same chain end to end); the request log is written by
the endpoint server's own writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from workbench_dsl.backends.deployer._store import EndpointStore
from workbench_dsl.backends.deployer.requestlog import LogSettings, RequestLog, log_dir
from workbench_dsl.paths import LocalRoot

ENDPOINT = "demo"


def _ds(name: str, version: str, **art: Any) -> dict[str, Any]:
    return {
        "namespace": "workbench",
        "name": name,
        "facets": {"version": {"datasetVersion": version}, "workbench_artifact": art},
    }


def _event(job: str, run: str, inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-12-02T10:00:00.000Z",
        "run": {"runId": run, "facets": {"parent": {"run": {"runId": "p"}, "job": {}}}},
        "job": {"namespace": "workbench", "name": job},
        "inputs": inputs,
        "outputs": outputs,
    }


def served_root(home: Path, rows: int = 1000, seed: int = 0) -> tuple[LocalRoot, str]:
    """A root whose endpoint ``demo`` serves ``models:/demo/1``, trained on a table of
    ``size`` (normal 10, 2) and ``colour`` (0/1/2) with the label ``label``."""
    import pandas as pd

    root = LocalRoot(home).ensure()
    rng = np.random.default_rng(seed)
    data = home / "artifacts" / "ab" / "data"
    data.parent.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "size": rng.normal(10, 2, rows),
            "colour": rng.choice([0, 1, 2], rows, p=[0.5, 0.3, 0.2]),
            "label": rng.integers(0, 2, rows),
        }
    )
    frame.to_csv(data, index=False)
    holdout = home / "artifacts" / "cd" / "holdout"
    holdout.parent.mkdir(parents=True)
    frame.head(50).to_csv(holdout, index=False)
    model_ds = _ds("p/fit/model", "sha256:m", uri=str(home / "m"), type="system.Model")
    train_ds = _ds("p/load/data", "sha256:d", uri=str(data), type="system.Dataset", format="csv")
    hold_ds = _ds("p/load/holdout", "sha256:h", uri=str(holdout), type="system.Dataset")
    mv = {
        "namespace": "workbench",
        "name": "models:/demo",
        "facets": {"version": {"datasetVersion": "1"}},
    }
    store = EndpointStore(root.runs_db)
    with store.transaction() as conn:
        store.create(conn, name=ENDPOINT, port=1, protocol="v2", auth="none")
        rev = store.add_revision(
            conn,
            endpoint=ENDPOINT,
            model_uri="models:/demo/1",
            storage=str(home / "m"),
            flavor="sklearn",
            predictor_source=None,
            predictor_name=None,
            run_id="r1",
        ).revision
        store.update(ENDPOINT, conn, stable=rev)
    ep = {
        "namespace": "workbench",
        "name": f"endpoint:{ENDPOINT}",
        "facets": {"version": {"datasetVersion": rev}},
    }
    events = [
        _event("p.load", "1", [], [train_ds, hold_ds]),
        _event("p.fit", "2", [train_ds], [model_ds]),
        _event("p.evaluate", "3", [model_ds, hold_ds], [mv]),
        _event("p.predict", "4", [mv], [ep]),
    ]
    root.lineage_events.parent.mkdir(parents=True, exist_ok=True)
    root.lineage_events.write_text("".join(json.dumps(e) + "\n" for e in events))
    return root, rev


def log_traffic(
    root: LocalRoot, revision: str, n: int, *, shift: float = 0.0, seed: int = 1
) -> None:
    """``n`` requests of one instance each, ``size`` shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    log = RequestLog(log_dir(root.endpoints / ENDPOINT), LogSettings())
    for _ in range(n):
        row = [[float(rng.normal(10 + shift, 2)), float(rng.choice([0, 1, 2], p=[0.5, 0.3, 0.2]))]]
        log.record(revision, "ok", 0.001, np.array(row), [1])
    log.flush()
    log.close()
