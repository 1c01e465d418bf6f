"""Take the README's screenshots of a running ``workbench ui`` (not a test).

    workbench ui --port 8765 --token demo &
    python tests/ui/screenshots.py http://127.0.0.1:8765 demo docs/screenshots

Each main page is shot in headless Chromium at 1280 px wide, cut to its first screen and
saved as a small palette PNG.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

PAGES = {
    "runs": "/runs",
    "run": "/runs/{run}?task={task}",
    "sweep": "/sweeps/{sweep_run}/{sweep_task}",
    "approvals": "/approvals",
    "endpoint": "/endpoints/{endpoint}",
    "costs": "/costs",
    "lineage": "/lineage?target={lineage}",
    "schedules": "/schedules",
}


def main(base: str, token: str, out: Path, **names: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,900",
    ]:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp()}")
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    out.mkdir(parents=True, exist_ok=True)
    try:
        d.get(f"{base}/?token={token}")
        for name, path in PAGES.items():
            try:
                url = base + path.format(**names)
            except KeyError:
                continue
            d.get(url)
            time.sleep(0.8)
            target = out / f"{name}.png"
            d.save_screenshot(str(target))
            _shrink(target)
            print(f"{target}  {target.stat().st_size // 1024} kB")
    finally:
        d.quit()


def _shrink(path: Path) -> None:
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)


if __name__ == "__main__":
    base, token, out, *rest = sys.argv[1:]
    main(base, token, Path(out), **dict(kv.split("=", 1) for kv in rest))
