"""Local endpoints: real KServe model servers on 127.0.0.1, canary split, bad input, stop and up.

Every server a test starts is stopped by the fixture that owns its root.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends.deployer import DeployError, DeploySpec
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.paths import LocalRoot

pytestmark = pytest.mark.slow

X = [[0.0, 1.0], [3.0, 1.0]]
LIMIT = 64 * 1024


def _save(path: Path, constant: int) -> str:
    import mlflow.sklearn
    from sklearn.tree import DecisionTreeClassifier

    # Always predicts `constant`, and checks the number of features like any estimator.
    model = DecisionTreeClassifier().fit([[0, 0], [1, 1]], [constant, constant])
    mlflow.sklearn.save_model(
        model, path, serialization_format="pickle", pip_requirements=["scikit-learn"]
    )
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("models")
    broken = base / "broken"
    _save(broken, 0)
    (broken / "model.pkl").write_bytes(b"not a pickle")
    return {"zero": _save(base / "zero", 0), "one": _save(base / "one", 1), "broken": str(broken)}


@pytest.fixture(scope="module")
def deployer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployer]:
    os.environ["WORKBENCH_MAX_REQUEST_BYTES"] = str(LIMIT)  # read by the servers at start
    d = LocalDeployer(LocalRoot(tmp_path_factory.mktemp("home")))
    try:
        yield d
    finally:
        d.stop_all()
        os.environ.pop("WORKBENCH_MAX_REQUEST_BYTES", None)


def _spec(models: dict[str, str], which: str, **kw: Any) -> DeploySpec:
    return DeploySpec(
        endpoint=kw.pop("endpoint", "churn"),
        model_uri=f"models:/churn/{which}",
        storage=models[which],
        flavor="sklearn",
        **kw,
    )


def _raw(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if chunked:
            conn.putrequest(method, path)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.putheader("Content-Type", "application/json")
            conn.endheaders()
            for i in range(0, len(body), 8192):
                piece = body[i : i + 8192]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request(
                method,
                path,
                body=body,
                headers={"content-type": "application/json", **(headers or {})},
            )
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data.decode()
    finally:
        conn.close()


def _listen_address(port: int) -> str:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, hexport = local.split(":")
        if int(hexport, 16) == port and state == "0A":
            return socket.inet_ntoa(bytes.fromhex(host)[::-1])
    return "not listening"


def test_canary_lifecycle_on_one_url(deployer: LocalDeployer, models: dict[str, str]) -> None:
    first = deployer.deploy(_spec(models, "zero", protocol="v1"))
    assert first.revision == "churn-predictor-00001" and not first.canary
    assert first.url.startswith("http://127.0.0.1:") and first.url.endswith(
        "/v1/models/churn:predict"
    )
    info = deployer.get("churn")
    port = int(first.url.split(":")[2].split("/")[0])
    assert _listen_address(port) == "127.0.0.1"  # never 0.0.0.0
    pid = deployer.store.get("churn").pid  # type: ignore[union-attr]
    assert pid is not None and os.getsid(pid) != os.getsid(0)  # detached: outlives the run
    assert (info.state, info.stable, info.canary) == ("running", first.revision, None)

    # V1 and V2 at the same server; the revision that served is in a header and in V2's reply.
    assert deployer.predict("churn", {"instances": X}) == (
        200,
        {"predictions": [0, 0]},
        first.revision,
    )
    v2 = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [0, 1, 3, 1]}]}
    status, reply = _raw(port, "POST", "/v2/models/churn/infer", json.dumps(v2).encode())
    assert status == 200 and reply["outputs"][0]["data"] == [0, 0]
    assert reply["model_version"] == first.revision
    assert _raw(port, "GET", "/v2/health/ready")[0] == 200
    assert _raw(port, "GET", "/v2/models/churn/ready")[0] == 200

    # Same model again: nothing rolls out.
    again = deployer.deploy(_spec(models, "zero", protocol="v1"))
    assert (again.revision, again.unchanged) == (first.revision, True)

    # A new model becomes a 20% canary at the same URL; the split is exact.
    canary = deployer.deploy(_spec(models, "one", protocol="v1", canary_percent=20))
    assert (canary.url, canary.revision, canary.canary) == (
        first.url,
        "churn-predictor-00002",
        True,
    )
    served = Counter(
        deployer.predict("churn", {"instances": X[:1]})[1]["predictions"][0] for _ in range(200)
    )
    assert served == {0: 160, 1: 40}
    metrics = _raw(port, "GET", "/metrics")[1]
    assert (
        'workbench_endpoint_requests_total{endpoint="churn",outcome="ok",revision="churn-predictor-00002"} 40.0'
        in metrics
    )
    assert "request_predict_seconds" in metrics  # kserve's own histograms

    # A model that fails to load fails the deployment and leaves the split alone.
    with pytest.raises(
        DeployError,
        match=r"revision churn-predictor-00003 failed to load: UnpicklingError: .*the previous revision keeps serving",
    ):
        deployer.deploy(_spec(models, "broken", protocol="v1"))
    info = deployer.get("churn")
    assert (info.stable, info.canary, info.canary_percent) == (first.revision, canary.revision, 20)
    assert info.revisions[0]["state"] == "failed"

    # Promote: the canary takes everything. Then a new canary, rolled back.
    info = deployer.promote("churn")
    assert (info.stable, info.canary) == (canary.revision, None)
    assert {deployer.predict("churn", {"instances": X})[2] for _ in range(20)} == {canary.revision}
    third = deployer.deploy(_spec(models, "zero", protocol="v1", canary_percent=50))
    info = deployer.rollback("churn")
    assert (info.stable, info.canary) == (canary.revision, None)
    assert {r["revision"]: r["state"] for r in info.revisions}[third.revision] == "rolled-back"
    with pytest.raises(DeployError, match="no canary to roll back"):
        deployer.rollback("churn")

    # Stop frees the port; up serves the same revisions on the same port again.
    deployer.stop("churn")
    assert deployer.get("churn").state == "stopped"
    assert _listen_address(port) == "not listening"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as any server does
        s.bind(("127.0.0.1", port))
        s.listen()
    (info,) = deployer.up()
    assert (info.state, info.url, info.stable) == ("running", first.url, canary.revision)
    assert deployer.predict("churn", {"instances": X})[1] == {"predictions": [1, 1]}


def test_bad_requests_get_4xx_and_never_take_the_server_down(
    deployer: LocalDeployer, models: dict[str, str]
) -> None:
    result = deployer.deploy(_spec(models, "zero", endpoint="sturdy", protocol="v2"))
    port = int(result.url.split(":")[2].split("/")[0])
    pid = deployer.store.get("sturdy").pid  # type: ignore[union-attr]
    path = "/v2/models/sturdy/infer"
    v1 = "/v1/models/sturdy:predict"

    status, reply = _raw(port, "POST", v1, b"{not json")
    assert status == 400 and "Unrecognized request format" in reply["error"]
    status, reply = _raw(port, "POST", v1, json.dumps({"instances": {"a": 1}}).encode())
    assert status == 400 and "to be a list" in reply["error"]
    status, reply = _raw(port, "POST", v1, json.dumps({"instances": [[1.0, 2.0, 3.0]]}).encode())
    assert status == 400 and "features" in reply["error"]  # the model's own message
    bad_shape = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}
    status, reply = _raw(port, "POST", path, json.dumps(bad_shape).encode())
    assert status == 400 and "reshape" in reply["error"]
    status, _ = _raw(port, "POST", path, json.dumps({"inputs": "nope"}).encode())
    assert status == 422  # the V2 schema
    big = json.dumps({"instances": [[0.0, 1.0]] * 20000}).encode()
    assert len(big) > LIMIT
    status, reply = _raw(port, "POST", v1, big)
    assert status == 413 and "over the limit of 65536 bytes" in reply["error"]
    status, reply = _raw(port, "POST", v1, big, chunked=True)
    assert status == 413
    status, reply = _raw(
        port, "POST", "/v1/models/other:predict", json.dumps({"instances": X}).encode()
    )
    assert status == 404

    good = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [0, 1, 3, 1]}]}
    assert deployer.predict("sturdy", good)[0] == 200
    assert deployer.store.get("sturdy").pid == pid  # type: ignore[union-attr]


def test_token_auth_and_a_class_predictor(deployer: LocalDeployer, models: dict[str, str]) -> None:
    source = (
        "class Scorer:\n"
        "    def load(self, model_dir):\n"
        "        import pickle, os\n"
        "        self.model = pickle.load(open(os.path.join(model_dir, 'model.pkl'), 'rb'))\n"
        "    def predict(self, instances):\n"
        "        return [f'class {int(p)}' for p in self.model.predict(instances)]\n"
    )
    result = deployer.deploy(
        _spec(
            models,
            "one",
            endpoint="secure",
            protocol="v1",
            auth="token",
            predictor_source=source,
            predictor_name="Scorer",
        )
    )
    assert result.token and len(result.token) >= 32
    row = deployer.store.get("secure")
    assert (
        row is not None and row.token_hash and result.token not in row.token_hash
    )  # stored hashed
    status, reply, _ = deployer.predict("secure", {"instances": X})
    assert (status, reply["error"]) == (401, "this endpoint needs Authorization: Bearer <token>")
    assert deployer.predict("secure", {"instances": X}, token="wrong")[:2] == (
        401,
        {"error": "invalid token"},
    )
    assert deployer.predict("secure", {"instances": X}, token=result.token)[:2] == (
        200,
        {"predictions": ["class 1", "class 1"]},
    )
    port = int(result.url.split(":")[2].split("/")[0])
    assert _raw(port, "GET", "/v2/health/live")[0] == 200  # health stays open
    # Redeploying does not show the token again; rotating makes a new one, the old stops working.
    assert (
        deployer.deploy(
            _spec(
                models,
                "one",
                endpoint="secure",
                protocol="v1",
                auth="token",
                predictor_source=source,
                predictor_name="Scorer",
            )
        ).token
        is None
    )
    new = deployer.rotate_token("secure")
    assert deployer.predict("secure", {"instances": X}, token=result.token)[0] == 401
    assert deployer.predict("secure", {"instances": X}, token=new)[0] == 200


def test_first_deploy_of_a_broken_model_fails_with_its_error(
    deployer: LocalDeployer, models: dict[str, str]
) -> None:
    with pytest.raises(
        DeployError,
        match=r"endpoint fragile: revision fragile-predictor-00001 failed to load: UnpicklingError",
    ):
        deployer.deploy(_spec(models, "broken", endpoint="fragile"))
    info = deployer.get("fragile")
    assert (info.state, info.stable) == ("stopped", None)
    assert deployer.up(["fragile"]) == []  # nothing to serve
