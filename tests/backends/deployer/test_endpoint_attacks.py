"""Local endpoints tried as an attacker would: a web page in the user's browser, a rebound
DNS name, a slow client, a hung server. Real KServe servers on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench_dsl.backends.deployer import DeploySpec
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.paths import LocalRoot

pytestmark = pytest.mark.slow

X = [[0.0, 1.0]]
TIMEOUT_S = 1.0
# A cut-off must come within this (the timeout plus room for a loaded 2-core host)...
CUT_WITHIN_S = TIMEOUT_S + 6
# ...and well before a slow client would give up on its own.
SLOW_DRIP_S = 30.0


@pytest.fixture(scope="module")
def deployer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployer]:
    import mlflow.sklearn
    from sklearn.tree import DecisionTreeClassifier

    model = tmp_path_factory.mktemp("models") / "one"
    mlflow.sklearn.save_model(
        DecisionTreeClassifier().fit([[0, 0], [1, 1]], [1, 1]),
        model,
        serialization_format="pickle",
        pip_requirements=["scikit-learn"],
    )
    # Read by the servers at start.
    os.environ["WORKBENCH_HEADER_TIMEOUT_S"] = str(TIMEOUT_S)
    os.environ["WORKBENCH_BODY_TIMEOUT_S"] = str(TIMEOUT_S)
    d = LocalDeployer(LocalRoot(tmp_path_factory.mktemp("home")))
    try:
        for name, auth in (("open", "none"), ("secure", "token")):
            d.deploy(
                DeploySpec(
                    endpoint=name,
                    model_uri="models:/m/1",
                    storage=str(model),
                    flavor="sklearn",
                    protocol="v1",
                    auth=auth,
                ),
                issue_token=False,
            )
        yield d
    finally:
        d.stop_all()
        os.environ.pop("WORKBENCH_HEADER_TIMEOUT_S", None)
        os.environ.pop("WORKBENCH_BODY_TIMEOUT_S", None)


def _port(d: LocalDeployer, name: str) -> int:
    row = d.store.get(name)
    assert row is not None
    return row.port


def _request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


REPOSITORY = (
    "/v2/repository/models/{name}/unload",
    "/v2/repository/models/{name}/load",
    "/v2/repository/index",
)


@pytest.mark.parametrize("name", ["open", "secure"])
def test_no_web_page_and_no_token_can_unload_the_model(deployer: LocalDeployer, name: str) -> None:
    port = _port(deployer, name)
    token = deployer.rotate_token("secure") if name == "secure" else None
    # What a page at evil.example can send without a preflight: a form-encoded POST.
    cross_site = {
        "Host": f"127.0.0.1:{port}",
        "Origin": "http://evil.example",
        "Content-Type": "text/plain",
        "Sec-Fetch-Site": "cross-site",
    }
    status, reply = _request(port, "POST", f"/v2/repository/models/{name}/unload", cross_site, b"x")
    assert status == 403 and "cross-site" in reply
    # From this machine, even with the prediction token: the routes are not there.
    for route in REPOSITORY:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, reply = _request(port, "POST", route.format(name=name), headers, b"{}")
        assert status == 404, (route, status, reply)
        assert "model-repository routes" in reply
    # The model still answers, and says so.
    assert deployer.get(name).state == "running"
    status, reply, _ = deployer.predict(name, {"instances": X}, token=token)
    assert (status, reply) == (200, {"predictions": [1]})


def test_a_foreign_host_header_is_refused(deployer: LocalDeployer) -> None:
    port = _port(deployer, "open")
    body = json.dumps({"instances": X}).encode()
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", "localhost"):
        status, reply = _request(port, "POST", "/v1/models/open:predict", {"Host": host}, body)
        assert (status, host) == (403, host) and "127.0.0.1 or localhost" in reply
    # A page at evil.example whose name was rebound to 127.0.0.1, unloading "same-origin".
    status, reply = _request(
        port,
        "POST",
        "/v2/repository/models/open/unload",
        {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
        b"",
    )
    assert status == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert _request(port, "POST", "/v1/models/open:predict", {"Host": host}, body)[0] == 200
    # The control route needs the admin secret, which no page and no task log has.
    status, _ = _request(
        port, "POST", "/_workbench/routing", {"Content-Type": "application/json"}, b"{}"
    )
    assert status == 403


def test_slow_clients_are_cut_off(deployer: LocalDeployer) -> None:
    port = _port(deployer, "open")
    # Headers dripped one line at a time: the connection ends at the header timeout.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        start = time.monotonic()
        s.sendall(b"POST /v1/models/open:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        got = b""
        i = 0
        # Drip for far longer than the timeout: a server without one would keep listening.
        while time.monotonic() - start < SLOW_DRIP_S:
            i += 1
            try:
                s.sendall(f"X-Slow-{i}: a\r\n".encode())
            except OSError:
                break
            s.settimeout(0.25)
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                continue
            got += chunk
            if not chunk or got:
                break
        took = time.monotonic() - start
    assert got.startswith(b"HTTP/1.1 408"), got
    assert took < CUT_WITHIN_S
    # A connection that sends nothing at all is closed too.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        start = time.monotonic()
        assert s.recv(4096).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - start < CUT_WITHIN_S
    # The body promised by Content-Length, sent too slowly.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        start = time.monotonic()
        s.sendall(
            f"POST /v1/models/open:predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{".encode()
        )
        reply = b""
        while chunk := s.recv(4096):  # the head and the body may come in two segments
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert b"did not arrive within" in reply
        assert time.monotonic() - start < CUT_WITHIN_S
    # The server still serves everyone else.
    assert deployer.predict("open", {"instances": X})[0] == 200


def test_a_token_endpoint_made_by_a_run_refuses_everything_until_its_owner_makes_a_token(
    deployer: LocalDeployer,
) -> None:
    # (The fixture deployed "secure" the way a deploy step does: no token shown anywhere.)
    fresh = LocalDeployer(deployer.root)
    row = fresh.store.get("secure")
    assert row is not None and row.auth == "token"
    token = fresh.rotate_token("secure")
    assert fresh.predict("secure", {"instances": X})[0] == 401
    assert fresh.predict("secure", {"instances": X}, token=token)[0] == 200
    assert token not in json.dumps([i.to_json() for i in fresh.list()])
    hits = [
        p
        for p in Path(deployer.root.root).rglob("*")
        if p.is_file() and token.encode() in p.read_bytes()
    ]
    assert hits == []


def test_a_server_that_stops_answering_shows_so_and_up_replaces_it(
    deployer: LocalDeployer,
) -> None:
    row = deployer.store.get("open")
    assert row is not None and row.pid
    os.kill(row.pid, signal.SIGSTOP)  # hung: the process is there, nothing answers
    try:
        assert deployer.get("open").state == "not answering"
        (info,) = deployer.up(["open"])
    finally:
        try:
            os.kill(row.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert info.state == "running"
    new = deployer.store.get("open")
    assert new is not None and new.pid != row.pid and new.port == row.port
    assert deployer.predict("open", {"instances": X})[0] == 200


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_two_host_headers_are_refused_whichever_comes_first(deployer: LocalDeployer) -> None:
    port = _port(deployer, "open")
    own = f"127.0.0.1:{port}"
    for first, second in ((own, "evil.example"), ("evil.example", own), (own, own)):
        reply = _raw(
            port,
            f"GET /v1/models/open HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert reply.startswith(b"HTTP/1.1 400 "), (first, second, reply[:200])
    # One Host (HTTP/1.1 or 1.0) still works; none at all is refused.
    assert b" 200 " in _raw(port, f"GET /v2/health/live HTTP/1.0\r\nHost: {own}\r\n\r\n".encode())
    assert b" 403 " in _raw(port, b"GET /v2/health/live HTTP/1.0\r\n\r\n")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"null", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"instances"', "application/json"),
        (b"42", "application/json"),
        (b'{"instances": [[0.0, 1.0]]}', "text/plain"),
        (b"instances=1", "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_that_is_no_request_object_is_a_400(
    deployer: LocalDeployer, body: bytes, content_type: str
) -> None:
    port = _port(deployer, "open")
    status, reply = _request(
        port, "POST", "/v1/models/open:predict", {"Content-Type": content_type}, body
    )
    assert status == 400, (body, status, reply)
    assert "AttributeError" not in reply
