"""The dashboard's drawings: layered layout, a run's DAG from its spec, the timeline, charts."""

from __future__ import annotations

import json

import pytest
from ui_helpers import XSS, spec_text

from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.ui import dag, layout, timeline
from workbench_dsl.ui.charts import Series, bars, split_bar, xy_chart
from workbench_dsl.ui.svg import el


def test_layout_columns_follow_the_longest_path() -> None:
    cols = layout.columns(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")])
    assert cols == {"a": 0, "b": 1, "c": 2, "d": 3}
    # A cycle never hangs the drawing: its nodes go last.
    looped = layout.columns(["x", "y", "z"], [("x", "y"), ("y", "x")])
    assert looped["z"] == 0 and looped["x"] == looped["y"] == 1
    boxes, width, height = layout.place(
        ["a", "b", "c"], [("a", "b"), ("a", "c")], width=100, height=40
    )
    assert boxes["b"].x == boxes["c"].x > boxes["a"].x
    assert boxes["b"].y != boxes["c"].y and width > 200 and height >= 2 * 40


def _loop_spec(iterations: int) -> tuple[PipelineSpec, dict[str, dict]]:
    spec = json.loads(spec_text())
    spec["root"]["dag"]["tasks"]["for-loop-2"] = {
        "componentRef": {"name": "comp-for-loop-2"},
        "dependentTasks": ["load"],
        "parameterIterator": {"itemInput": "x", "items": {"raw": "[1, 2]"}},
        "taskInfo": {"name": "for-loop-2"},
    }
    spec["root"]["dag"]["tasks"]["report"] = {
        "componentRef": {"name": "comp-train"},
        "dependentTasks": ["for-loop-2"],
        "taskInfo": {"name": "report"},
    }
    spec["components"]["comp-for-loop-2"] = {
        "dag": {"tasks": {"square": {"componentRef": {"name": "comp-train"}}}}
    }
    rows: dict[str, dict] = {
        "load": {"task": "load", "kind": "container", "status": "SUCCEEDED", "cached": 1},
        "for-loop-2": {"task": "for-loop-2", "kind": "loop", "status": "RUNNING"},
    }
    for i in range(iterations):
        it = f"for-loop-2[{i}]"
        rows[it] = {
            "task": it,
            "kind": "iteration",
            "status": "RUNNING",
            "parent": "for-loop-2",
            "seq": i,
        }
        rows[f"{it}/square"] = {
            "task": f"{it}/square",
            "kind": "container",
            "status": "RUNNING" if i else "FAILED",
            "parent": it,
            "attempts": 2,
        }
    return PipelineSpec.parse(json.dumps(spec)), rows


def test_a_run_dag_from_its_spec_and_task_rows() -> None:
    spec, rows = _loop_spec(2)
    graph = dag.build(spec, rows)
    # Tasks not reached yet are drawn PENDING from the spec.
    assert (
        graph.nodes["train"].status == "PENDING"
        and graph.nodes["condition-1/deploy"].status == "PENDING"
    )
    assert graph.nodes["load"].look == "CACHED"
    assert graph.nodes["for-loop-2[0]/square"].look == "FAILED"
    # What waits for the loop waits for each iteration's last task.
    assert ("for-loop-2[0]/square", "report") in graph.edges
    assert ("for-loop-2[1]/square", "report") in graph.edges
    assert ("for-loop-2", "report") not in graph.edges
    assert ("for-loop-2", "for-loop-2[1]") in graph.contains
    svg = dag.draw(graph, "run1", selected="load")
    assert "/runs/run1?task=for-loop-2%5B0%5D%2Fsquare#task" in svg
    assert 'class="node selected"' in svg and "2 attempts" in svg


def test_a_big_loop_is_summed_up() -> None:
    spec, rows = _loop_spec(dag.MAX_ITERATIONS + 5)
    graph = dag.build(spec, rows)
    assert (
        "for-loop-2/…" in graph.nodes and graph.nodes["for-loop-2/…"].label == "+5 more iterations"
    )
    assert f"for-loop-2[{dag.MAX_ITERATIONS}]" not in graph.nodes


def test_waiting_for_approval_has_its_own_color() -> None:
    node = dag.DagNode(
        "evaluate",
        "evaluate",
        "container",
        "RUNNING",
        True,
        {"status_line": "waiting for approval: workbench approve churn 2"},
    )
    assert node.look == "WAITING"


def test_timeline_bars_retries_and_idle_time() -> None:
    run = {"status": "SUCCEEDED", "started_at": 100.0, "finished_at": 110.0}
    tasks = [
        {"task": "a", "cached": 0, "started_at": 100.0},
        {"task": "b", "cached": 1, "started_at": 101.0},
        {"task": XSS, "cached": 0, "started_at": 104.0},
    ]
    attempts = [
        {
            "task": "a",
            "attempt": 1,
            "status": "FAILED",
            "started_at": 100.0,
            "finished_at": 101.0,
            "error": "x",
        },
        {
            "task": "a",
            "attempt": 2,
            "status": "SUCCEEDED",
            "started_at": 102.0,
            "finished_at": 103.0,
        },
        {
            "task": XSS,
            "attempt": 1,
            "status": "SUCCEEDED",
            "started_at": 104.0,
            "finished_at": 108.0,
        },
    ]
    svg = timeline.draw(run, tasks, attempts)
    assert svg is not None
    assert svg.count('class="tl-bar"') == 3 and "#2" in svg and "tl-cached" in svg
    assert XSS not in svg and "&lt;script&gt;" in svg
    intervals = [(a["started_at"], a["finished_at"]) for a in attempts]
    # Busy 100-101, 102-103 and 104-108 of 100-110: 6 of 10 seconds.
    assert timeline.busy_fraction(intervals, 100.0, 110.0) == pytest.approx(0.6)
    assert (
        timeline.draw({"status": "RUNNING", "started_at": None, "created_at": None}, [], []) is None
    )
    assert timeline.nice_step(10) == 2 and timeline.nice_step(0.9) == 0.2


def test_charts_escape_and_scale() -> None:
    chart = xy_chart(
        [
            Series(XSS, [(1e-4, 0.5), (1e-2, 0.7)]),
            Series("best", [(1e-4, 0.5), (1e-2, 0.7)], style="step"),
        ],
        x_label="lr",
        y_label="acc",
        log_x=True,
    )
    assert XSS not in chart and "&lt;script&gt;" in chart and "1e-3" in chart
    cats = xy_chart(
        [Series("k", [(0.0, 1.0), (1.0, 2.0)])], x_label="k", y_label="v", categories=["a", "b"]
    )
    assert ">a<" in cats and ">b<" in cats
    assert "0.93" in bars([("accuracy", 0.93)])
    split = split_bar("s", "c", 10)
    assert split.count("<rect") == 2 and "canary c: 10%" in split
    assert split_bar("s", None, 0).count("<rect") == 1
    assert str(el("text", {"class_": "x", "text_anchor": "end"}, XSS)) == (
        '<text class="x" text-anchor="end">&lt;script&gt;alert(1)&lt;/script&gt;</text>'
    )


def test_a_chain_longer_than_the_drawing_is_cut_without_dangling_edges() -> None:
    # KFP names a chain's tasks inc, inc-2, ..., inc-500 and sorts them as text, so
    # inc-10 comes long before inc-9: an edge could name a task the cut left out.
    n = dag.MAX_NODES + 100
    names = ["inc", *(f"inc-{i}" for i in range(2, n + 1))]
    tasks = {
        name: {
            "componentRef": {"name": "comp-inc"},
            "dependentTasks": [names[i - 1]] if i else [],
            "taskInfo": {"name": name},
        }
        for i, name in sorted(enumerate(names), key=lambda p: p[1])
    }
    spec = {
        "pipelineInfo": {"name": "chain"},
        "root": {"dag": {"tasks": tasks}},
        "components": {"comp-inc": {"executorLabel": "exec-inc"}},
        "deploymentSpec": {"executors": {"exec-inc": {"container": {"image": "python"}}}},
    }
    graph = dag.build(PipelineSpec.parse(json.dumps(spec)), {})
    assert graph.truncated and len(graph.nodes) == dag.MAX_NODES
    assert all(a in graph.nodes and b in graph.nodes for a, b in graph.edges)
    assert dag.draw(graph, "run1")
