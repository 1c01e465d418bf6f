"""`workbench endpoints drift`: the table, the stable JSON document and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.backends.drift.drift_helpers import ENDPOINT, log_traffic, served_root
from workbench_dsl.cli.app import app


def _drift(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["endpoints", "drift", *args])
    return r.exit_code, r.output


def test_table_and_json(workbench_home: Path) -> None:
    root, rev = served_root(workbench_home)
    log_traffic(root, rev, 200, shift=4.0)
    code, out = _drift(ENDPOINT)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"{ENDPOINT} revision {rev}: 200 instance(s) in 200 request(s)")
    assert "p/load/data" in lines[0] and "models:/demo/1" in lines[0]
    assert lines[1].split() == ["feature", "kind", "psi", "test", "p-value", "verdict"]
    assert lines[2].split()[:2] == ["size", "numeric"] and lines[2].endswith("DRIFTED")
    assert lines[3].split()[:2] == ["colour", "categorical"] and lines[3].endswith("ok")
    assert lines[4].startswith("1 of 2 feature(s) drifted (psi >= 0.2 and p < 0.01): size")

    code, out = _drift(ENDPOINT, "--json", "--psi", "50")
    doc = json.loads(out)
    assert code == 0 and list(doc) == [
        "endpoint",
        "revision",
        "since",
        "requests",
        "instances",
        "reference",
        "thresholds",
        "drifted",
        "drifted_features",
        "max_psi",
        "features",
    ]
    assert doc["drifted"] is False and doc["thresholds"]["psi"] == 50
    assert doc["reference"]["dataset"] == "p/load/data"
    assert list(doc["features"][0]) == [
        "feature",
        "kind",
        "psi",
        "test",
        "statistic",
        "p_value",
        "drifted",
        "reference_n",
        "current_n",
    ]


def test_errors_are_one_line_exit_2(workbench_home: Path) -> None:
    root, rev = served_root(workbench_home)
    code, out = _drift(ENDPOINT)
    assert code == 2 and out.count("\n") == 1 and "too few logged requests" in out
    assert "0 instance(s) in 0 request(s), at least 50 needed" in out
    log_traffic(root, rev, 60)
    code, out = _drift("nope")
    assert code == 2 and "no endpoint named 'nope' (known: demo)" in out
    code, out = _drift(ENDPOINT, "--since", "yesterday")
    assert code == 2 and "bad --since 'yesterday'" in out

    # deployed outside a run (no endpoint in the lineage): its record names the model version
    events = root.lineage_events.read_text().splitlines()
    root.lineage_events.write_text("\n".join(e for e in events if '"p.predict"' not in e) + "\n")
    code, out = _drift(ENDPOINT, "--min-requests", "10")
    assert code == 0 and "against p/load/data" in out, out

    # a link of the chain missing: said, with which one
    root.lineage_events.write_text("\n".join(e for e in events if '"p.fit"' not in e) + "\n")
    code, out = _drift(ENDPOINT)
    assert code == 2 and out.count("\n") == 1
    assert "missing link model artifact <- training step" in out
    root.lineage_events.unlink()
    code, out = _drift(ENDPOINT)
    assert code == 2 and "no lineage recorded" in out


def test_only_the_newest_instances_are_compared(
    workbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench_dsl.backends.drift import report

    monkeypatch.setattr(report, "MAX_INSTANCES", 100)
    root, rev = served_root(workbench_home)
    log_traffic(root, rev, 300)
    log_traffic(root, rev, 100, shift=4.0, seed=9)
    code, out = _drift(ENDPOINT, "--json")
    doc = json.loads(out)
    assert code == 0 and (doc["instances"], doc["drifted_features"]) == (100, ["size"])
