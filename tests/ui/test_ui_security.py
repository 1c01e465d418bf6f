"""Who may read and act on the dashboard: token, loopback reads, CSRF, Host and Origin checks,
a strict CSP, and nothing loaded from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ui_helpers import ORIGIN, PORT, TOKEN, csrf_of, make_client

from workbench_dsl.ui import render
from workbench_dsl.ui.actions import safe_next
from workbench_dsl.ui.security import is_loopback

COOKIE = f"workbench_ui_token_{PORT}"


def test_reads_are_open_on_loopback_only(workbench_home: Path) -> None:
    assert make_client(workbench_home).get("/runs").status_code == 200
    far = make_client(workbench_home, client_host="192.0.2.7")
    refused = far.get("/runs")
    assert refused.status_code == 403 and "?token=" in refused.text
    assert far.get("/runs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert far.get("/runs", headers={"authorization": "Bearer wrong"}).status_code == 403
    far.cookies.set(COOKIE, TOKEN)
    assert far.get("/runs").status_code == 200


def test_the_token_url_logs_in_once_then_disappears(workbench_home: Path) -> None:
    c = make_client(workbench_home, client_host="192.0.2.7")
    r = c.get("/runs", params={"token": TOKEN, "status": "FAILED"})
    assert r.status_code == 303 and r.headers["location"] == "/runs?status=FAILED"
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert c.get("/runs").status_code == 200  # the cookie now carries the token
    assert make_client(workbench_home).get("/runs", params={"token": "nope"}).status_code == 403
    # The token itself is never written into a page (forms carry a CSRF token instead).
    assert TOKEN not in c.get("/runs").text


def test_requests_must_name_a_loopback_host(workbench_home: Path) -> None:
    c = make_client(workbench_home)
    assert c.get("/runs", headers={"host": "evil.example:8765"}).status_code == 403
    assert c.get("/runs", headers={"host": "localhost:8765"}).status_code == 200
    assert c.get("/runs", headers={"host": "[::1]:8765"}).status_code == 200
    # Listening on every address (--host 0.0.0.0): a rebound name still reads nothing
    # without the token, while the machine's own address with the token does.
    c.app.state.access.bind_host = "0.0.0.0"  # type: ignore[attr-defined]
    assert c.get("/runs", headers={"host": "evil.example:8765"}).status_code == 403
    assert c.get("/runs", headers={"host": "127.0.0.1:8765"}).status_code == 200
    c.cookies.set(COOKIE, TOKEN)
    assert c.get("/runs", headers={"host": "10.1.2.3:8765"}).status_code == 200


def test_actions_need_the_token_and_the_csrf_token(workbench_home: Path) -> None:
    c = make_client(workbench_home)
    # Loopback is not enough to act.
    refused = c.post("/schedules/nightly/pause", data={"csrf": csrf_of(c)})
    assert refused.status_code == 403 and "token" in refused.text
    c.cookies.set(COOKIE, TOKEN)
    assert c.post("/schedules/nightly/pause", data={}).status_code == 403
    assert c.post("/schedules/nightly/pause", data={"csrf": "forged"}).status_code == 403
    cross = c.post(
        "/schedules/nightly/pause",
        data={"csrf": csrf_of(c)},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "cross-site" in cross.text
    ok = c.post(
        "/schedules/nightly/pause",
        data={"csrf": csrf_of(c), "next": "https://evil.example/"},
        headers={"origin": ORIGIN},
    )
    # Accepted (the schedule does not exist: the message says so on the page it returns to).
    assert ok.status_code == 303 and ok.headers["location"].startswith("/schedules?flash=")
    page = c.get(ok.headers["location"]).text
    assert "no schedule named &#39;nightly&#39;" in page
    # A script with the bearer token needs no CSRF token, and gets JSON.
    r = c.post(
        "/schedules/nightly/pause",
        headers={"authorization": f"Bearer {TOKEN}", "accept": "application/json"},
    )
    assert r.status_code == 400 and r.json()["ok"] is False
    assert c.get("/schedules/nightly/pause").status_code == 405
    assert c.put("/runs").status_code == 405


def test_every_page_gets_a_strict_policy(workbench_home: Path) -> None:
    r = make_client(workbench_home).get("/runs")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_all_assets_are_local(workbench_home: Path) -> None:
    c = make_client(workbench_home)
    css = c.get("/static/ui.css")
    js = c.get("/static/ui.js")
    assert css.status_code == 200 and js.status_code == 200
    html = c.get("/runs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("/", "?", "#")) for s in sources), sources
    # Nothing in the packaged templates or assets reaches out: no CDN, no web fonts.
    for path in [*render.TEMPLATES.glob("*.html"), *render.STATIC.glob("*")]:
        text = path.read_text(encoding="utf-8")
        for pattern in (
            r'(?:src|href)="(?:https?:)?//',
            r"url\(\s*['\"]?(?:https?:)?//",
            r"@import",
        ):
            assert not re.search(pattern, text), f"{path.name} loads something from elsewhere"
        assert "<script>" not in text and " on" + "click=" not in text  # no inline script


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/runs/abc?task=x", "/runs/abc?task=x"),
        ("https://evil.example/", "/home"),
        ("//evil.example/", "/home"),
        ("runs", "/home"),
        (None, "/home"),
    ],
)
def test_actions_only_return_to_local_pages(target: str | None, expected: str) -> None:
    assert safe_next(target, "/home") == expected


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.0.0.1") and not is_loopback("testclient") and not is_loopback(None)


@pytest.mark.parametrize(
    "host",
    [
        "localhost:8765@evil.example",
        "[::1]evil.example:8765",
        "localhost.:8765",
        "127.0.0.1.nip.io:8765",
        "localhost:8765:1",
        "localhost:http",
        "[::ffff:127.0.0.1]:8765",
        "",
    ],
)
def test_a_host_that_only_starts_like_loopback_is_refused(workbench_home: Path, host: str) -> None:
    assert make_client(workbench_home).get("/runs", headers={"host": host}).status_code == 403


def test_two_host_headers_are_refused(workbench_home: Path) -> None:
    c = make_client(workbench_home)
    for hosts in (["127.0.0.1:8765", "evil.example"], ["localhost:8765", "localhost:8765"]):
        headers = [("host", h) for h in hosts]
        assert c.get("/runs", headers=headers).status_code == 400  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("//evil.example/x", "/evil.example/x"), ("/%2Fevil.example", "/evil.example")],
)
def test_the_token_url_redirects_to_a_page_here_only(
    workbench_home: Path, path: str, expected: str
) -> None:
    c = make_client(workbench_home)
    r = c.get(ORIGIN + path, params={"token": TOKEN, "a": "1"})
    assert r.status_code == 303 and r.headers["location"] == expected + "?a=1"
