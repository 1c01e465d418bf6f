"""The dashboard's run pages over HTTP: the list, a run (DAG, timeline, tasks, logs, artifact
previews), its live updates, the cost and sweep pages; user strings always rendered as text."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import pytest
from ui_helpers import XSS, add_run, artifact, attempt, make_client, spec_text

from workbench_dsl.engine.store import RunStore


def _png(path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"\x00\xff\x00\x00"  # one red pixel
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def seeded(workbench_home: Path, tmp_path: Path) -> Path:
    """A root with a finished run (cache hit, a retry, artifacts), a failed one and a live one."""
    store = RunStore(workbench_home / "runs.db")
    files = tmp_path / "files"
    files.mkdir()
    (files / "data.csv").write_text("a,b,label\n1,2,x\n3,4,y\n", encoding="utf-8")
    (files / "report.md").write_text(
        f"# Report\n\n**bold** {XSS}\n\n[bad](javascript:alert(1)) [ok](https://example.org)\n",
        encoding="utf-8",
    )
    (files / "page.html").write_text(f"<h1>hi</h1>{XSS}", encoding="utf-8")
    _png(files / "plot")
    add_run(
        store,
        "aaa111000000",
        "demo",
        params={"rows": 5},
        tasks={
            "load": {
                "status": "SUCCEEDED",
                "cached": True,
                "started_at": 1.0e9,
                "outputs_json": {
                    "parameters": {},
                    "artifacts": {"data": [artifact(files / "data.csv", "system.Dataset", "data")]},
                },
            },
            "condition-1": {"kind": "dag", "status": "SUCCEEDED"},
            "condition-1/deploy": {"status": "SKIPPED", "parent": "condition-1"},
        },
        cost=0.25,
    )
    attempt(store, workbench_home, "aaa111000000", "train", 1, status="FAILED", log="first try\n")
    attempt(
        store,
        workbench_home,
        "aaa111000000",
        "train",
        2,
        log="epoch 1\nepoch 2 done\n",
        fields={
            "cost_per_hour": 3.6,
            "cost": 0.0005,
            "inputs_json": {"parameters": {"lr": 0.1}, "artifacts": {}},
            "outputs_json": {
                "parameters": {"Output": 0.93, "model_uri": "models:/churn/3"},
                "artifacts": {
                    "metrics": [
                        artifact(
                            files / "absent",
                            "system.Metrics",
                            "metrics",
                            {"accuracy": 0.93, "f1": 0.9},
                        )
                    ],
                    "report": [artifact(files / "report.md", "system.Markdown", "report")],
                    "page": [artifact(files / "page.html", "system.HTML", "page")],
                    "plot": [artifact(files / "plot", "system.Artifact", "plot")],
                },
            },
        },
    )
    add_run(store, "bbb222000000", XSS, status="FAILED", tasks={"load": {"status": "FAILED"}})
    # A run whose engine is this process: RUNNING, with one task running and writing a log.
    add_run(store, "ccc333000000", "demo", status="RUNNING")
    attempt(store, workbench_home, "ccc333000000", "load", 1, status="RUNNING", log="starting\n")
    store.close()
    return workbench_home


def test_runs_list_filters_pages_and_counts(seeded: Path) -> None:
    c = make_client(seeded)
    html = c.get("/runs").text
    assert "3 runs" in html
    for run_id in ("aaa111000000", "bbb222000000", "ccc333000000"):
        assert f'href="/runs/{run_id}"' in html
    # Cost and the cache hit of the finished run show in its row.
    row = re.search(r"aaa111000000.*?</tr>", html, re.S)
    assert row and "$0.2500" in row.group(0) and ">1</td>" in row.group(0)
    only_failed = c.get("/runs", params={"status": "FAILED"}).text
    assert "1 run" in only_failed and "bbb222000000" in only_failed
    assert "aaa111000000" not in only_failed
    demo = c.get("/runs", params={"pipeline": "demo"}).text
    assert "2 runs" in demo and "bbb222000000" not in demo
    by_prefix = c.get("/runs", params={"run": "ccc"}).text
    assert "1 run" in by_prefix and "ccc333000000" in by_prefix
    assert "No run matches" in c.get("/runs", params={"run": "zzz"}).text
    assert "No run matches" in c.get("/runs", params={"run": "a'; DROP TABLE runs"}).text
    assert c.get("/runs", params={"page": 99}).status_code == 200


def test_run_page_graph_timeline_tasks_and_outputs(seeded: Path) -> None:
    c = make_client(seeded, logged_in=True)  # logs and artifacts need the token
    r = c.get("/runs/aaa111", params={"task": "train"})  # a unique prefix is enough
    assert r.status_code == 200
    html = r.text
    dag = html[
        html.index('class="chart dag"') : html.index("</svg>", html.index('class="chart dag"'))
    ]
    # Every task of the spec is a node, the group too; a task node links to its panel.
    for label in (">load<", ">train<", ">condition-1<", ">deploy<"):
        assert label in dag
    assert "/runs/aaa111000000?task=train#task" in dag
    assert 'fill="#7fc8a0"' in dag  # load: a cache hit
    assert 'fill="#d9dde3"' in dag  # deploy: skipped
    assert "2 attempts" in dag
    timeline = html[html.index('class="chart timeline"') :]
    assert timeline.count('class="tl-bar') == 2 and "#1" in timeline and "#2" in timeline
    assert "tl-cached" in timeline  # the cache hit as a diamond
    # The task panel: attempts, inputs, outputs, metrics, links.
    assert "Task train" in html and "boom" in html
    assert ">lr<" in html and "0.1" in html
    assert "accuracy" in html and "0.93" in html and 'aria-label="bar chart"' in html
    assert "/lineage?target=models%3A%2Fchurn%2F3" in html
    assert "$3.60" in html  # its profile's cost per hour
    assert "idle" in html


def test_artifact_previews_are_safe(seeded: Path) -> None:
    c = make_client(seeded, logged_in=True)  # logs and artifacts need the token
    html = c.get("/runs/aaa111000000", params={"task": "train"}).text
    # Markdown is rendered, but raw HTML in it is text and javascript: links are dropped.
    assert "<h1>Report</h1>" in html and "<strong>bold</strong>" in html
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html and 'href="https://example.org"' in html
    # HTML only in a sandboxed frame, served with a sandboxing CSP.
    frame = re.search(r'<iframe class="artifact" sandbox="" [^>]*src="([^"]+)"', html)
    assert frame
    raw = c.get(frame.group(1).replace("&amp;", "&"))
    assert raw.status_code == 200 and raw.text.startswith("<h1>hi</h1>")
    assert raw.headers["content-security-policy"].startswith("sandbox;")
    assert raw.headers["content-type"].startswith("text/html")
    # An image without a suffix is sniffed and shown; it is served as an image.
    img = re.search(r'<img class="artifact-img" src="([^"]+)"', html)
    assert img
    got = c.get(img.group(1).replace("&amp;", "&"))
    assert got.headers["content-type"] == "image/png"
    # The cached task's dataset: its first rows as a table.
    load = c.get("/runs/aaa111000000", params={"task": "load"}).text
    assert "<th>label</th>" in load and '<td class="mono">y</td>' in load and "2 rows" in load
    download = c.get(
        "/runs/aaa111000000/artifact",
        params={"task": "load", "name": "data", "download": 1},
    )
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.text.startswith("a,b,label")
    # Only what the store recorded can be fetched.
    missing = c.get("/runs/aaa111000000/artifact", params={"task": "load", "name": "../../etc"})
    assert missing.status_code == 404


def test_log_follows_a_running_attempt(seeded: Path) -> None:
    c = make_client(seeded, logged_in=True)  # logs and artifacts need the token
    first = c.get("/api/runs/ccc333000000/log", params={"task": "load"}).json()
    assert first["text"] == "starting\n" and not first["done"]
    log = seeded / "runs" / "ccc333000000" / "logs" / "load.1.log"
    with open(log, "a", encoding="utf-8") as f:
        f.write("step 2\n")
    more = c.get(
        "/api/runs/ccc333000000/log", params={"task": "load", "offset": first["offset"]}
    ).json()
    assert more["text"] == "step 2\n"
    retried = c.get(
        "/api/runs/aaa111000000/log", params={"task": "train", "attempt": 1, "offset": 0}
    )
    assert retried.json()["text"] == "first try\n" and retried.json()["newer"] is True
    # The run page shows the log panel, wired to the same API.
    page = c.get("/runs/ccc333000000").text  # the running task is picked by default
    assert 'id="log"' in page and "/api/runs/ccc333000000/log?task=load" in page
    assert 'data-status="RUNNING"' in page


def test_live_parts_change_when_the_run_does(seeded: Path) -> None:
    c = make_client(seeded)
    before = c.get("/api/runs/ccc333000000").json()
    assert before["status"] == "RUNNING" and before["tasks"] == {"load": "RUNNING"}
    store = RunStore(seeded / "runs.db")
    store.finish_attempt(
        "ccc333000000", "load", 1, "SUCCEEDED", 1.0, 0, None, task_fields={"status": "SUCCEEDED"}
    )
    store.finish_run("ccc333000000", "SUCCEEDED", None, {}, 0.0)
    after = c.get("/api/runs/ccc333000000").json()
    assert after["status"] == "SUCCEEDED" and after["sig"] != before["sig"]
    live = c.get("/runs/ccc333000000/live")
    assert live.headers["x-sig"] == after["sig"]
    assert "succeeded" in live.text and "<html" not in live.text


def test_costs_page_totals_per_pipeline(seeded: Path) -> None:
    c = make_client(seeded)
    html = c.get("/costs").text
    table = html[html.index('id="pipeline-costs"') :]
    demo = re.search(r">demo</a></td>(.*?)</tr>", table, re.S)
    assert demo and '<td class="num">2</td>' in demo.group(1) and "$0.2500" in demo.group(1)
    assert "burn rate now" in html
    assert "aaa111000000" in html  # the most expensive run


def test_sweep_page_charts_a_trials_dataset(workbench_home: Path, tmp_path: Path) -> None:
    trials = tmp_path / "trials.csv"
    rows = ["trial,state,accuracy,duration_s,params.lr,params.kind,error"]
    for i, (lr, kind, acc) in enumerate(
        [(0.001, "a", 0.8), (0.01, "b", 0.9), (0.1, "a", 0.85), (0.5, "b", "")]
    ):
        rows.append(f"{i},{'COMPLETE' if acc else 'PRUNED'},{acc},0.1,{lr},{kind},")
    trials.write_text("\n".join(rows) + "\n", encoding="utf-8")
    store = RunStore(workbench_home / "runs.db")
    add_run(store, "ddd444000000", "tuning", status="RUNNING")
    log = attempt(store, workbench_home, "ddd444000000", "tune", 1, status="RUNNING")
    record = artifact(
        trials,
        "system.Dataset",
        "trials",
        {"objective": "accuracy", "goal": "maximize", "best_trial": 1, "rows": 4},
    )
    store.finish_attempt(
        "ddd444000000",
        "tune",
        1,
        "SUCCEEDED",
        1.0,
        0,
        None,
        task_fields={"status": "SUCCEEDED", "outputs_json": {"artifacts": {"trials": [record]}}},
        artifacts=[record],
    )
    store.finish_run("ddd444000000", "SUCCEEDED", None, {}, 0.0)
    assert log.exists()
    c = make_client(workbench_home)
    listing = c.get("/sweeps").text
    assert "/sweeps/ddd444000000/tune" in listing and "maximize accuracy" in listing
    html = c.get("/sweeps/ddd444000000/tune").text
    assert "accuracy by trial, best so far" in html and "best so far" in html
    assert "lr against accuracy" in html and "(log)" in html  # 0.001..0.5 spans decades
    assert "kind against accuracy" in html  # a categorical parameter
    assert html.count("<circle") == 3 + 3 + 3  # completed trials only, on three charts
    assert 'class="selected"' in html  # the best trial's row
    run_page = c.get("/runs/ddd444000000", params={"task": "tune"}).text
    assert "sweep charts" in run_page


def test_user_strings_render_as_text_everywhere(seeded: Path, tmp_path: Path) -> None:
    # A pipeline, a task and an artifact named <script>alert(1)</script>.
    data = tmp_path / "x.txt"
    data.write_text(XSS, encoding="utf-8")
    store = RunStore(seeded / "runs.db")
    add_run(
        store,
        "fff666000000",
        XSS,
        tasks={
            XSS: {
                "status": "SUCCEEDED",
                "status_line": XSS,
                "outputs_json": {
                    "parameters": {XSS: XSS},
                    "artifacts": {XSS: [artifact(data, "system.Dataset", XSS, {XSS: XSS})]},
                },
            }
        },
    )
    c = make_client(seeded)
    for path, params in (
        ("/runs", {}),
        ("/runs/bbb222000000", {}),
        ("/runs/fff666000000", {"task": XSS}),
        ("/costs", {}),
        ("/runs", {"pipeline": XSS}),
        ("/lineage", {"target": XSS}),
        ("/runs/<b>x", {}),
    ):
        html = c.get(path, params=params).text
        assert XSS not in html and "<b>x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;b&gt;x" in html, path
    live = c.get("/runs/fff666000000/live", params={"task": XSS}).text
    assert XSS not in live and "&lt;script&gt;" in live


def test_unknown_run_is_a_404_page(seeded: Path) -> None:
    c = make_client(seeded)
    r = c.get("/runs/nope")
    assert r.status_code == 404 and "no run matches" in r.text
    other = c.get("/no/such/page")
    assert other.status_code == 404 and "<h1>Not found</h1>" in other.text
    assert c.get("/api/runs/nope").json() == {
        "error": "no run matches 'nope' (see: workbench runs list)"
    }


def test_a_spec_that_cannot_be_read_still_shows_its_tasks(workbench_home: Path) -> None:
    store = RunStore(workbench_home / "runs.db")
    add_run(
        store, "eee555000000", "odd", spec="not: [a pipeline", tasks={"x": {"status": "SUCCEEDED"}}
    )
    html = make_client(workbench_home).get("/runs/eee555000000").text
    assert ">x<" in html[html.index('class="chart dag"') :]
    json.loads(spec_text())  # the helper's spec is valid JSON (and so YAML)
