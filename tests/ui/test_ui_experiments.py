"""The dashboard's experiments list, an experiment's runs with its metric charts, and compare."""

from __future__ import annotations

from pathlib import Path

from ui_helpers import XSS, make_client, spec_text

from workbench_dsl.engine.store import RunStore


def _metrics_output(task: str, value: float) -> dict:
    return {
        "parameters": {},
        "artifacts": {
            "metrics": [
                {
                    "name": "metrics",
                    "uri": f"/nowhere/{task}/metrics",
                    "sha256": None,
                    "size": 0,
                    "absent": True,
                    "type": {"schemaTitle": "system.Metrics", "schemaVersion": "0.0.1"},
                    "metadata": {"accuracy": value},
                }
            ]
        },
    }


def _seed(home: Path) -> None:
    store = RunStore(home / "runs.db")
    for run_id, exp, lr, acc in [
        ("run0000001", "tuning", 0.1, 0.81),
        ("run0000002", "tuning", 0.2, 0.93),
        ("run0000003", XSS, 0.3, 0.5),
    ]:
        store.create_run(
            run_id, "churn", spec_text(), "", {"lr": lr}, {}, "demo.py", experiment=exp
        )
        store.upsert_task(
            run_id,
            "evaluate",
            {"kind": "container", "status": "SUCCEEDED", "outputs_json": _metrics_output("e", acc)},
        )
        store.finish_run(run_id, "SUCCEEDED", None, {"Output": acc}, 0.0)
    store.close()


def test_experiments_pages_and_compare(workbench_home: Path) -> None:
    _seed(workbench_home)
    c = make_client(workbench_home, logged_in=True)

    r = c.get("/experiments")
    assert r.status_code == 200
    assert 'href="/experiments/tuning"' in r.text and ">2</td>" in r.text
    assert XSS not in r.text  # a name is text, never markup

    r = c.get("/experiments/tuning")
    assert r.status_code == 200
    assert 'name="runs" value="run0000001"' in r.text and "run0000003" not in r.text
    assert "evaluate.accuracy" in r.text and "<svg" in r.text  # the metric across the runs
    assert "0.93" in r.text

    r = c.get("/compare?runs=run0000001&runs=run0000002")
    assert r.status_code == 200
    assert 'class="differs"' in r.text
    row = r.text.split('<th class="mono">lr</th>')[1].split("</tr>")[0]
    assert "0.1" in row and "0.2" in row
    assert "evaluate.accuracy" in r.text and "<svg" in r.text

    r = c.get("/compare?runs=run0000001")
    assert r.status_code == 404 and "select two or more runs to compare" in r.text
    r = c.get("/experiments/nope")
    assert r.status_code == 404 and "no experiment" in r.text
