"""The endpoint page shows the stable revision's drift per feature, or why there is none."""

from __future__ import annotations

from pathlib import Path

from ui_helpers import make_client

from tests.backends.drift.drift_helpers import ENDPOINT, log_traffic, served_root
from workbench_dsl.backends.drift import report


def test_endpoint_page_shows_drift(workbench_home: Path) -> None:
    root, rev = served_root(workbench_home)
    report._cache.clear()
    c = make_client(workbench_home, logged_in=True)
    page = c.get(f"/endpoints/{ENDPOINT}")
    assert page.status_code == 200
    assert 'id="drift-none"' in page.text and "too few logged requests" in page.text

    report._cache.clear()
    log_traffic(root, rev, 200, shift=4.0)
    page = c.get(f"/endpoints/{ENDPOINT}")
    table = page.text.split('id="drift"', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tr>")[2:]
    assert "size" in rows[0] and ">drifted<" in rows[0]
    assert "colour" in rows[1] and ">ok<" in rows[1]
    assert "200 logged instance(s)" in page.text and "p/load/data" in page.text
