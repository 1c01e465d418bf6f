"""`workbench endpoints ...` against a real local endpoint (one KServe model server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.backends.deployer import DeploySpec, local_deployer
from workbench_dsl.cli.app import app

runner = CliRunner()


def _saved_model(path: Path, constant: int) -> str:
    import mlflow.sklearn
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier().fit([[0, 0], [1, 1]], [constant, constant])
    mlflow.sklearn.save_model(
        model, path, serialization_format="pickle", pip_requirements=["scikit-learn"]
    )
    return str(path)


@pytest.fixture
def endpoint(workbench_home: Path, tmp_path: Path) -> Iterator[str]:
    deployer = local_deployer()
    spec = DeploySpec(
        endpoint="churn",
        model_uri="models:/churn/1",
        storage=_saved_model(tmp_path / "a", 0),
        flavor="sklearn",
        protocol="v2",
    )
    deployer.deploy(spec)
    canary = DeploySpec(
        endpoint="churn",
        model_uri="models:/churn/2",
        storage=_saved_model(tmp_path / "b", 1),
        flavor="sklearn",
        protocol="v2",
        canary_percent=50,
    )
    deployer.deploy(canary)
    try:
        yield "churn"
    finally:
        deployer.stop_all()


@pytest.mark.slow
def test_endpoint_commands(endpoint: str) -> None:
    listed = runner.invoke(app, ["endpoints", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (info,) = json.loads(listed.stdout)
    assert (info["state"], info["canary_percent"]) == ("running", 50)
    assert info["stable"] == "churn-predictor-00001" and info["canary"] == "churn-predictor-00002"

    text = runner.invoke(app, ["endpoints", "list"]).stdout
    assert text.startswith(f"churn  running  {info['url']}\n")
    assert "    churn-predictor-00001 50%, canary churn-predictor-00002 50%\n" in text

    # A bare list becomes a V2 request for a v2 endpoint; the split is exact (1 of 2).
    served = []
    for _ in range(4):
        r = runner.invoke(app, ["endpoints", "predict", "churn", "--data", "[[0.5, 1.5]]"])
        assert r.exit_code == 0, r.output
        served.append(json.loads(r.stdout))
    assert sorted(map(tuple, served)) == [(0,), (0,), (1,), (1,)]
    assert "served by churn-predictor-0000" in r.stderr

    bad = runner.invoke(app, ["endpoints", "predict", "churn", "--data", "[[1, 2, 3]]"])
    assert bad.exit_code == 1 and "HTTP 400" in bad.output and "features" in bad.output
    assert runner.invoke(app, ["endpoints", "predict", "churn", "--data", "{oops"]).exit_code == 2

    promoted = runner.invoke(app, ["endpoints", "promote", "churn", "--json"])
    assert json.loads(promoted.stdout)["stable"] == "churn-predictor-00002"
    rollback = runner.invoke(app, ["endpoints", "rollback", "churn"])
    assert rollback.exit_code == 1 and "no canary to roll back" in rollback.output

    shown = runner.invoke(app, ["endpoints", "show", "churn"]).stdout
    assert "churn-predictor-00001  retired  models:/churn/1" in shown

    assert runner.invoke(app, ["endpoints", "stop", "churn"]).stdout.strip() == "stopped churn"
    down = runner.invoke(app, ["endpoints", "predict", "churn", "--data", "[[0, 0]]"])
    assert down.exit_code == 1 and "workbench endpoints up churn" in down.output
    up = runner.invoke(app, ["endpoints", "up", "--json"])
    assert up.exit_code == 0, up.output
    assert json.loads(up.stdout)[0]["state"] == "running"
    assert json.loads(
        runner.invoke(app, ["endpoints", "predict", "churn", "-d", "[[0, 0]]"]).stdout
    ) == [1]


def test_unknown_endpoint_is_exit_2(workbench_home: Path) -> None:
    result = runner.invoke(app, ["endpoints", "promote", "nope"])
    assert result.exit_code == 2 and "no endpoint named 'nope'" in result.output
    assert runner.invoke(app, ["endpoints", "list"]).stdout.strip().startswith("no endpoints")


def test_stop_all_with_no_endpoints_is_not_an_error(workbench_home: Path) -> None:
    result = runner.invoke(app, ["endpoints", "stop", "--all"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "no local endpoints"
    result = runner.invoke(app, ["endpoints", "stop"])
    assert result.exit_code == 2
    assert "name the endpoints to stop, or pass --all" in result.stderr
