"""`workbench run --experiment`, `experiments list|show`, `runs list --experiment`, `runs compare`."""

import json
import sys
import warnings
from pathlib import Path

import pytest
from kfp import compiler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
from replay_helpers import replayable, wb

pytestmark = pytest.mark.slow


def test_experiments_and_compare_as_a_user_sees_them(workbench_home: Path, tmp_path: Path) -> None:
    y = tmp_path / "replayable.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(replayable, str(y))

    def run(*args: str) -> dict:
        r = wb(workbench_home, "run", str(y), *args, "--json")
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    a = run("-p", "denominator=2", "--experiment", "ratios")
    b = run("-p", "denominator=4", "--experiment", "ratios")
    c = run("-p", "denominator=4")

    r = wb(workbench_home, "experiments", "list", "--json")
    exps = {e["experiment"]: e for e in json.loads(r.stdout)}
    assert exps["ratios"]["runs"] == 2 and exps["ratios"]["pipelines"] == ["replayable"]
    assert exps["Default"]["runs"] == 1
    r = wb(workbench_home, "experiments", "show", "ratios", "--json")
    shown = json.loads(r.stdout)
    assert [x["run_id"] for x in shown["run_list"]] == [b["run_id"], a["run_id"]]
    assert shown["run_list"][0]["parameters"] == {"rows": 4, "denominator": 4.0}
    r = wb(workbench_home, "experiments", "show", "ratios")
    assert r.returncode == 0 and "experiment ratios: 2 run(s)" in r.stdout
    r = wb(workbench_home, "runs", "list", "--experiment", "ratios", "--json")
    assert {x["run_id"] for x in json.loads(r.stdout)} == {a["run_id"], b["run_id"]}
    r = wb(workbench_home, "runs", "show", c["run_id"], "--json")
    assert json.loads(r.stdout)["experiment"] == "Default"

    r = wb(workbench_home, "runs", "compare", a["run_id"], b["run_id"], c["run_id"], "--json")
    assert r.returncode == 0, r.stderr
    cmp = json.loads(r.stdout)
    assert [x["run_id"] for x in cmp["runs"]] == [a["run_id"], b["run_id"], c["run_id"]]
    assert [x["experiment"] for x in cmp["runs"]] == ["ratios", "ratios", "Default"]
    params = {p["name"]: p for p in cmp["params"]}
    assert params["denominator"] == {
        "name": "denominator",
        "values": [2.0, 4.0, 4.0],
        "differs": True,
    }
    assert params["rows"]["differs"] is False
    assert cmp["outputs"] == [{"name": "Output", "values": [5.0, 2.5, 2.5], "differs": True}]
    tasks = {t["name"]: t for t in cmp["tasks"]}
    assert tasks["make-table"]["cached"] == [False, True, True] and tasks["make-table"]["differs"]
    assert [x["cache_hits"] for x in cmp["runs"]] == [0, 2, 3]

    r = wb(workbench_home, "runs", "compare", a["run_id"], b["run_id"])
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "denominator" in ln)
    assert line.startswith("*") and "2" in line and "4" in line
    assert not next(ln for ln in r.stdout.splitlines() if " rows " in ln).startswith("*")

    for args, message in [
        (("runs", "compare", a["run_id"]), "give two or more runs"),
        (("runs", "compare", a["run_id"], a["run_id"]), "the same run is given twice"),
        (("experiments", "show", "nope"), "no experiment 'nope' (known: "),
        (("run", str(y), "--experiment", " "), "bad experiment name"),
    ]:
        r = wb(workbench_home, *args)
        assert r.returncode == 2 and message in r.stderr, r.stderr
