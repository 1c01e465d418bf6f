"""The dashboard tried as an attacker would: a task that publishes links to the dashboard's own
secrets, a local client without the token, absurd or hostile parameters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ui_helpers import TOKEN, add_run, artifact, attempt, make_client

from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import LocalRoot

HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")


@pytest.fixture
def hostile(workbench_home: Path) -> Path:
    root = LocalRoot(workbench_home)
    store = RunStore(root.runs_db)
    out = workbench_home / "artifacts" / "x"
    out.mkdir(parents=True)
    folder = out / "model"
    folder.mkdir()
    (folder / "weights.txt").write_text("0.5\n", encoding="utf-8")
    os.symlink("/proc/self/environ", folder / "environ")
    os.symlink("/proc/self", folder / "self")  # a linked directory
    single = out / "single"
    single.mkdir()
    os.symlink("/proc/self/cmdline", single / "cmdline")
    os.symlink("/proc/self/environ", out / "top-link")
    outputs = {
        "parameters": {},
        "artifacts": {
            "model": [artifact(folder, "system.Model", "model")],
            "single": [artifact(single, "system.Artifact", "single")],
            "top": [artifact(out / "top-link", "system.Artifact", "top")],
        },
    }
    add_run(
        store, "aaa111000000", "demo", tasks={"t": {"status": "SUCCEEDED", "outputs_json": outputs}}
    )
    attempt(store, workbench_home, "aaa111000000", "t", 1, log="secret=hunter2\n")
    store.close()
    return workbench_home


def test_logs_and_artifacts_need_the_token_even_on_loopback(hostile: Path) -> None:
    anon = make_client(hostile)
    log = anon.get("/api/runs/aaa111000000/log", params={"task": "t"})
    assert log.status_code == 403 and "hunter2" not in log.text
    art = anon.get("/runs/aaa111000000/artifact", params={"task": "t", "name": "model"})
    assert art.status_code == 403
    page = anon.get("/runs/aaa111000000", params={"task": "t"})
    assert page.status_code == 200 and "weights.txt" not in page.text
    assert "Logs need the dashboard's token" in page.text
    assert "Previews need the dashboard's token" in page.text
    for r in (log, art, page):
        assert all(h in r.headers for h in HEADERS)
    # With the token: the log, and the page's previews.
    owner = make_client(hostile, logged_in=True)
    assert "hunter2" in owner.get("/api/runs/aaa111000000/log", params={"task": "t"}).text
    bearer = make_client(hostile).get(
        "/api/runs/aaa111000000/log",
        params={"task": "t"},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert bearer.status_code == 200


def test_links_inside_artifacts_are_never_followed(hostile: Path) -> None:
    owner = make_client(hostile, logged_in=True)
    environ = Path("/proc/self/environ").read_bytes().split(b"\0")[0].decode()
    html = owner.get("/runs/aaa111000000", params={"task": "t"}).text
    assert "weights.txt" in html
    assert "environ (a link, not followed)" in html
    assert "self (a link, not followed)" in html
    assert "the output is a link; links are never followed" in html
    assert environ not in html and "PATH=" not in html
    assert "pytest" not in html.split("<main", 1)[1].split("cmdline", 1)[-1][:400]
    # The file route refuses a top-level link, and serves no directory.
    top = owner.get("/runs/aaa111000000/artifact", params={"task": "t", "name": "top"})
    assert top.status_code == 403 and "link" in top.text and environ not in top.text
    for name in ("model", "single"):
        r = owner.get("/runs/aaa111000000/artifact", params={"task": "t", "name": name})
        assert r.status_code == 400
    dl = owner.get(
        "/runs/aaa111000000/artifact", params={"task": "t", "name": "top", "download": 1}
    )
    assert dl.status_code == 403


def test_absurd_or_hostile_parameters_get_4xx_with_the_security_headers(
    workbench_home: Path,
) -> None:
    from workbench_dsl.backends.registry import open_registry

    open_registry(root=LocalRoot(workbench_home)).models()  # a registry exists: names reach MLflow
    c = make_client(workbench_home, logged_in=True)
    for path, params in (
        ("/runs", {"page": "99999999999999999999999"}),
        ("/runs", {"page": str(2**63)}),
        ("/runs", {"page": "-5"}),
        ("/runs", {"page": "abc"}),
        ("/models/a'b", {}),
        ('/models/x" OR 1=1', {}),
        ("/runs/'", {}),
        ("/endpoints/'", {}),
    ):
        r = c.get(path, params=params)
        assert 200 <= r.status_code < 500 and r.status_code != 500, (path, params, r.status_code)
        assert all(h in r.headers for h in HEADERS), (path, r.headers)
    assert c.get("/runs", params={"page": str(2**63)}).status_code == 422
