"""End to end in headless Chromium: run a pipeline that waits for a manual approval, approve it
from the dashboard, watch the run finish on its page, then promote the next run's canary.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them) and
Selenium; skipped, saying why, when they are missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.engine.store import RunStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipelines" / "train_register_deploy.py"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WORKBENCH_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def _browser_or_skip() -> Any:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(path)):
            pytest.skip(f"{path} is not installed (apt-get install -y chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='wb-chromium-')}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(home)
    return env


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium (the test is skipped, saying why, when it is not installed)."""
    d = _browser_or_skip()
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture
def dashboard(workbench_home: Path) -> Iterator[str]:
    """``workbench ui`` on a free port; yields the URL it printed (with the token)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench_dsl", "ui", "--port", "0"],
        env=_env(workbench_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("workbench ui: "), (line, proc.stderr.read() if proc.stderr else "")
        yield line.split(": ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        from workbench_dsl.backends.deployer import local_deployer
        from workbench_dsl.paths import LocalRoot

        local_deployer(LocalRoot(workbench_home)).stop_all()


def _wait(what: str, check: Callable[[], Any], timeout: float = 90.0, poll: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def _start_run(home: Path, tmp: Path, n_estimators: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench_dsl",
            "run",
            str(PIPELINE),
            "-p",
            f"n_estimators={n_estimators}",
        ],
        cwd=tmp,
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _newest_run(home: Path, after: set[str]) -> str | None:
    if not (home / "runs.db").exists():
        return None
    store = RunStore(home / "runs.db")
    try:
        ids = [r["run_id"] for r in store.list_runs(10) if r["run_id"] not in after]
    finally:
        store.close()
    return ids[0] if ids else None


def _read(d: Any, selector: str, what: str = "textContent") -> str:
    """An element's text or HTML, read in one step: the run page swaps its live part in
    while it runs, so an element found a moment ago may be gone."""
    script = f"const e = document.querySelector(arguments[0]); return e ? e.{what} : '';"
    return str(d.execute_script(script, selector))


def _approve_from_the_page(d: Any, base: str, version: str) -> None:
    from selenium.webdriver.common.by import By

    box = f"#pending-breast-cancer-{version}"

    def pending() -> bool:
        d.get(f"{base}/approvals")
        return bool(d.find_elements(By.CSS_SELECTOR, box))

    _wait(f"version {version} to wait for approval", pending, poll=0.5)
    # Rejecting needs a reason: the form cannot be sent with an empty comment.
    reason = d.find_element(By.CSS_SELECTOR, f"{box} .reject-form textarea")
    assert d.execute_script("return arguments[0].checkValidity()", reason) is False
    d.find_element(By.CSS_SELECTOR, f"{box} .approve-form textarea").send_keys("checked in the UI")
    d.find_element(By.CSS_SELECTOR, f"{box} .approve-form button").click()
    flash = _wait("the approval message", lambda: _read(d, ".flash.ok"))
    assert f"breast-cancer version {version} approved by" in flash
    assert "alias production -> version " + version in flash
    decided = _read(d, "#decided")
    assert "checked in the UI" in decided


def _watch_run_finish(d: Any, base: str, run_id: str) -> None:
    from selenium.webdriver.common.by import By

    d.get(f"{base}/runs/{run_id}")
    # No reload from here on: the page follows the run by itself.
    marker = d.execute_script("window.__same_page = true; return window.__same_page")
    assert marker is True

    def finished() -> bool:
        return _read(d, "#live h1 .badge").strip() == "succeeded"

    _wait(f"run {run_id} to finish on its page", finished)
    assert d.execute_script("return window.__same_page") is True
    dag = _read(d, "#dag", "innerHTML")
    assert "predict" in dag and "#8b5cf6" not in dag  # nothing waits any more


def test_approve_watch_and_promote_in_a_browser(
    browser: Any, dashboard: str, workbench_home: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    d = browser
    runs: list[subprocess.Popen[str]] = []
    try:
        base = dashboard.split("/?token=")[0]
        d.get(dashboard)  # logs the browser in (cookie), then drops the token from the URL
        assert d.current_url == f"{base}/" or d.current_url.startswith(f"{base}/runs")
        assert "token=" not in d.current_url

        # Run 1 waits for a person; its page says so, and shows the step's log as it goes.
        runs.append(_start_run(workbench_home, tmp_path, 10))
        first = _wait("the first run", lambda: _newest_run(workbench_home, set()))

        def waiting_on_page() -> bool:
            d.get(f"{base}/runs/{first}?task=evaluate")
            return "waiting for approval" in _read(d, "#live")

        _wait("the run page to show the wait", waiting_on_page, poll=0.5)
        assert "#8b5cf6" in _read(d, "#dag", "innerHTML")
        _wait(
            "the followed log",
            lambda: "workbench approve breast-cancer 1" in _read(d, "#log"),
        )
        _approve_from_the_page(d, base, "1")
        _watch_run_finish(d, base, first)
        assert runs[0].wait(timeout=60) == 0, runs[0].stderr.read() if runs[0].stderr else ""

        # Run 2 deploys its model as a 10% canary once approved; promote it from the page.
        runs.append(_start_run(workbench_home, tmp_path, 20))
        second = _wait("the second run", lambda: _newest_run(workbench_home, {first}))
        _approve_from_the_page(d, base, "2")
        _watch_run_finish(d, base, second)
        assert runs[1].wait(timeout=60) == 0, runs[1].stderr.read() if runs[1].stderr else ""

        d.get(f"{base}/endpoints/breast-cancer")
        card = _read(d, "#endpoint-breast-cancer", "innerText")
        assert "breast-cancer-predictor-00001 90%, canary breast-cancer-predictor-00002 10%" in card
        d.find_element(By.CSS_SELECTOR, "button[name=promote]").click()
        flash = _wait("the promote message", lambda: _read(d, ".flash.ok"))
        assert "breast-cancer-predictor-00002 now takes all traffic" in flash
        card = _read(d, "#endpoint-breast-cancer", "innerText")
        assert "breast-cancer-predictor-00002 100%" in card and "canary" not in card
        assert not d.find_elements(By.CSS_SELECTOR, "button[name=promote]")
        revisions = _read(d, "#revisions")
        assert "retired" in revisions

        # The model page shows who approved what.
        d.get(f"{base}/models/breast-cancer")
        versions = _read(d, "#versions")
        assert versions.count("checked in the UI") == 2 and "production" in versions
        assert not [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
