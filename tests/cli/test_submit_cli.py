"""`workbench submit` against a recording KFP API server: the exact requests kfp.Client sends."""

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "schedule"))
from kfp_api_double import EXPERIMENT, KfpApiDouble, experiments

from workbench_dsl.cli.app import app

runner = CliRunner()


def compile_pipeline(tmp_path: Path) -> Path:
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def hello(name: str, times: int) -> str:
        return name * times

    @dsl.pipeline(name="hello-pipeline")
    def hello_pipeline(name: str = "x", times: int = 2, flag: bool = False):
        hello(name=name, times=times)

    path = tmp_path / "hello.yaml"
    compiler.Compiler().compile(hello_pipeline, str(path))
    return path


@pytest.fixture
def kfp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/kfp/context.json
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    d = KfpApiDouble()
    d.routes[("GET", "/apis/v2beta1/experiments")] = experiments(found=False)
    d.routes[("POST", "/apis/v2beta1/experiments")] = (
        200,
        {**EXPERIMENT, "display_name": "nightly", "experiment_id": "exp-9"},
    )
    d.routes[("POST", "/apis/v2beta1/runs")] = lambda m, p, q, body: (
        200,
        {**body, "run_id": "run-42", "state": "PENDING"},
    )
    yield d
    d.close()
    assert d.violations == []  # every request matched KFP's v2beta1 definition


def test_submit_compiles_and_creates_a_run(kfp: KfpApiDouble, tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path)
    r = runner.invoke(
        app,
        [
            "submit",
            str(path),
            "--host",
            kfp.url,
            "--experiment",
            "nightly",
            "-p",
            "times=3",
            "-p",
            "flag=true",
            "--token",
            "s3cret",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out == {
        "run_id": "run-42",
        "pipeline": "hello-pipeline",
        "experiment": "nightly",
        "params": {"times": 3, "flag": True},
        "url": f"{kfp.url}/#/runs/details/run-42",
    }
    assert kfp.calls() == [
        ("GET", "/apis/v2beta1/healthz"),
        ("GET", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/runs"),
    ]
    lookup, create_exp, create_run = kfp.requests[1], kfp.requests[2], kfp.requests[3]
    assert json.loads(lookup["query"]["filter"]) == {
        "predicates": [{"operation": 1, "key": "display_name", "stringValue": "nightly"}]
    }
    assert create_exp["body"] == {"display_name": "nightly", "namespace": ""}
    body = create_run["body"]
    assert body["display_name"] == "hello-pipeline" and body["experiment_id"] == "exp-9"
    assert body["runtime_config"] == {"parameters": {"times": 3, "flag": True}}
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "hello-pipeline"
    assert (
        body["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]["times"]["parameterType"]
        == "NUMBER_INTEGER"
    )
    assert all(req["headers"]["authorization"] == "Bearer s3cret" for req in kfp.requests)


def test_submit_cookies_namespace_and_no_cache(kfp: KfpApiDouble, tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path)
    r = runner.invoke(
        app,
        [
            "submit",
            str(path),
            "--host",
            kfp.url,
            "--namespace",
            "team-a",
            "--cookies",
            "authservice_session=abc",
            "--no-cache",
            "--run-name",
            "try-1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "submitted hello-pipeline: run run-42",
        f"{kfp.url}/#/runs/details/run-42",
    ]
    # a namespace given: kfp.Client skips /healthz; experiments are looked up in the namespace
    assert kfp.calls()[0] == ("GET", "/apis/v2beta1/experiments")
    assert kfp.requests[0]["query"]["namespace"] == "team-a"
    assert kfp.requests[1]["body"] == {"display_name": "Default", "namespace": "team-a"}
    run = kfp.requests[-1]["body"]
    assert run["display_name"] == "try-1"
    tasks = run["pipeline_spec"]["root"]["dag"]["tasks"]
    assert all(
        t["cachingOptions"] == {} or t["cachingOptions"].get("enableCache") is False
        for t in tasks.values()
    )
    assert all(req["headers"]["cookie"] == "authservice_session=abc" for req in kfp.requests)


def test_submit_a_dsl_module(kfp: KfpApiDouble, tmp_path: Path) -> None:
    mod = tmp_path / "flow.py"
    mod.write_text(
        "from kfp import dsl\n\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def step(n: int) -> int:\n    return n\n\n"
        "@dsl.pipeline(name='flow')\n"
        "def flow(n: int = 1):\n    step(n=n)\n"
    )
    r = runner.invoke(app, ["submit", f"{mod}:flow", "--host", kfp.url, "-p", "n=5", "--json"])
    assert r.exit_code == 0, r.output
    assert kfp.requests[-1]["body"]["runtime_config"] == {"parameters": {"n": 5}}


def test_submit_bad_input_fails_before_any_request(kfp: KfpApiDouble, tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path)
    r = runner.invoke(app, ["submit", str(path), "--host", kfp.url, "-p", "times=many"])
    assert r.exit_code == 2 and "parameter 'times' expects an integer" in r.output
    r = runner.invoke(app, ["submit", str(path), "--host", kfp.url, "-p", "nope=1"])
    assert r.exit_code == 2 and "unknown parameter 'nope'" in r.output
    missing = tmp_path / "missing-ca.pem"
    r = runner.invoke(app, ["submit", str(path), "--host", kfp.url, "--ssl-ca-cert", str(missing)])
    assert r.exit_code == 2
    assert r.output == f"error: --ssl-ca-cert {missing}: no such file; give the CA bundle (PEM)\n"
    assert kfp.requests == []


def test_unreachable_host_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = compile_pipeline(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = runner.invoke(app, ["submit", str(path), "--host", f"http://127.0.0.1:{port}"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"error: cannot reach the KFP API at http://127.0.0.1:{port}: [Errno 111] Connection refused"
    ]


def test_auth_refused_and_not_kfp(kfp: KfpApiDouble, tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path)
    kfp.routes[("GET", "/apis/v2beta1/healthz")] = (401, {"message": "Unauthorized"})
    r = runner.invoke(app, ["submit", str(path), "--host", kfp.url])
    assert r.exit_code == 2 and "refused the request (401 Unauthorized); pass --token" in r.output
    del kfp.routes[("GET", "/apis/v2beta1/healthz")]
    r = runner.invoke(app, ["submit", str(path), "--host", kfp.url])
    assert r.exit_code == 2 and "answered 404" in r.output and "is --host the KFP API" in r.output


def test_submit_refuses_what_the_cluster_would_refuse_before_any_request(
    kfp: KfpApiDouble, tmp_path: Path
) -> None:
    # auth='token' has no KServe counterpart: the endpoint would be open on a cluster.
    mod = tmp_path / "served.py"
    mod.write_text(
        "from workbench_dsl import pipeline, serve\n\n"
        "@serve(endpoint='churn', auth='token')\n"
        "def predict(model, instances):\n    return instances\n\n"
        "@pipeline(name='served')\n"
        "def served(uri: str = 'models:/churn/1'):\n    predict(model_uri=uri)\n"
    )
    r = runner.invoke(app, ["submit", f"{mod}:served", "--host", kfp.url])
    assert r.exit_code == 2, r.output
    assert "auth='token'" in r.output and "nothing submitted" in r.output
    assert kfp.requests == []
