"""The lineage page over a real run's OpenLineage events, and that run's own page."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pytest
from ui_helpers import make_client

from workbench_dsl.local_run import run

pytestmark = pytest.mark.slow

PIPELINE = """
from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output


@dsl.component(base_image="python:3.11")
def make(data: Output[Dataset], note: Output[Markdown]):
    with open(data.path, "w") as f:
        f.write("x,y\\n1,2\\n")
    with open(note.path, "w") as f:
        f.write("# Notes\\n<script>alert(1)</script>\\n")


@dsl.component(base_image="python:3.11")
def use(data: Input[Dataset]) -> int:
    print("read", data.path)
    return len(open(data.path).read())


@dsl.pipeline(name="lineage-demo")
def lineage_demo():
    made = make()
    use(data=made.outputs["data"])
"""


def test_lineage_of_a_real_run(workbench_home: Path, tmp_path: Path) -> None:
    module = tmp_path / "lineage_demo.py"
    module.write_text(PIPELINE, encoding="utf-8")
    result = run(str(module))
    assert result.ok, result.error
    c = make_client(workbench_home)

    overview = c.get("/lineage").text
    assert f'href="/lineage?target=run%3A{result.run_id}"' in overview
    assert "lineage-demo/make/data" in overview

    graph_page = c.get("/lineage", params={"target": f"run:{result.run_id}"})
    assert graph_page.status_code == 200
    page = graph_page.text
    svg = page[page.index('class="chart lineage"') :]
    assert "task run" in svg and "dataset" in svg and "pipeline run" in svg
    # A task run links to its place on the run page; a dataset to its own lineage.
    assert f'href="/runs/{result.run_id}?task=use#task"' in svg
    dataset_link = re.search(r'href="(/lineage\?target=lineage-demo%2Fmake%2Fdata[^"]*)"', svg)
    assert dataset_link
    followed = c.get(html_lib.unescape(dataset_link.group(1)))
    assert followed.status_code == 200 and 'class="lnode target"' in followed.text

    # From an artifact's path, as the run page's "lineage" links do.
    run_page = c.get(f"/runs/{result.run_id}", params={"task": "make"}).text
    link = re.search(r'href="(/lineage\?target=[^"]+)">lineage</a>', run_page)
    assert link and c.get(html_lib.unescape(link.group(1))).status_code == 200

    missing = c.get("/lineage", params={"target": "models:/nothing/1"})
    assert missing.status_code == 404 and "nothing in the lineage matches" in missing.text


def test_page_of_a_real_run(workbench_home: Path, tmp_path: Path) -> None:
    module = tmp_path / "lineage_demo.py"
    module.write_text(PIPELINE, encoding="utf-8")
    result = run(str(module))
    c = make_client(workbench_home, logged_in=True)  # previews need the token
    page = c.get(f"/runs/{result.run_id}", params={"task": "make"}).text
    dag = page[
        page.index('class="chart dag"') : page.index("</svg>", page.index('class="chart dag"'))
    ]
    assert ">make<" in dag and ">use<" in dag and dag.count('class="edge"') == 1
    assert "<h1>Notes</h1>" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "<th>x</th><th>y</th>" in page  # the Dataset's first rows
    log = c.get(f"/api/runs/{result.run_id}/log", params={"task": "use"}).json()
    assert log["done"] and "read " in log["text"]
