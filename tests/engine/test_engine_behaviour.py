"""Engine behaviour around the IR: cache verification, observers, status lines, cost, resume keys."""

import os
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl, kubernetes
from kfp.dsl import Dataset, Input, Output

from workbench_dsl.engine.events import BaseObserver, RunInfo, TaskInfo
from workbench_dsl.engine.store import RunStore

pytestmark = pytest.mark.slow

IMG = "python:3.11"


@dsl.component(base_image=IMG)
def make(text: str, out: Output[Dataset]):
    with open(out.path, "w") as f:
        f.write(text)
    out.metadata["n"] = len(text)


@dsl.component(base_image=IMG)
def length(data: Input[Dataset]) -> int:
    with open(data.path) as f:
        return len(f.read())


@dsl.pipeline(name="cached")
def cached_pipeline(text: str = "abc") -> int:
    return length(data=make(text=text).outputs["out"]).output


def test_cache_hit_is_verified_and_a_changed_artifact_reruns(run_kfp: Any) -> None:
    first = run_kfp(cached_pipeline)
    assert first.outputs == {"Output": 3}
    second = run_kfp(cached_pipeline)
    assert [t["cached"] for t in second.tasks] == [True, True]
    # Corrupt the stored artifact: the next hit must not be trusted.
    store = RunStore(Path(os.environ["WORKBENCH_HOME"]) / "runs.db")
    uri = store.artifacts(first.run_id)[0]["uri"]
    os.chmod(uri, 0o644)
    Path(uri).write_text("abcdef")
    third = run_kfp(cached_pipeline)
    assert third.outputs == {"Output": 3}
    assert not third.tasks[0]["cached"]  # `make` ran again ...
    assert any("failed verification" in n for n in third.notices)
    assert Path(uri).read_text() == "abc"  # ... and its output replaced the damaged copy


def test_same_content_from_another_producer_hits_the_cache(run_kfp: Any) -> None:
    @dsl.component(base_image=IMG)
    def make2(text: str, out: Output[Dataset]):
        with open(out.path, "w") as f:
            f.write(text)
        out.metadata["n"] = len(text)

    @dsl.pipeline(name="other-producer")
    def p(text: str = "abc") -> int:
        return length(data=make2(text=text).outputs["out"]).output

    run_kfp(cached_pipeline)
    s = run_kfp(p)
    by_name = {t["name"]: t for t in s.tasks}
    assert not by_name["make2"]["cached"]
    assert by_name["length"]["cached"]  # keyed by content, not by producer or URI


class Recorder(BaseObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_run_start(self, run: RunInfo) -> None:
        self.events.append(("run_start", run))

    def on_task_start(self, task: TaskInfo) -> None:
        self.events.append(("task_start", task))

    def on_task_end(self, task: TaskInfo) -> None:
        self.events.append(("task_end", task))

    def on_task_status(self, task: str, line: str) -> None:
        self.events.append(("status", (task, line)))

    def on_run_end(self, run: RunInfo) -> None:
        self.events.append(("run_end", run))


def test_observer_sees_lineage_facts(run_kfp: Any) -> None:
    rec = Recorder()
    s = run_kfp(cached_pipeline, {"text": "hello"}, observers=[rec])
    kinds = [k for k, _ in rec.events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    ends = {t.name: t for k, t in rec.events if k == "task_end"}
    made = ends["make"].outputs["artifacts"]["out"][0]
    assert (
        made["sha256"]
        and made["metadata"] == {"n": 5}
        and made["type"]["schemaTitle"] == "system.Dataset"
    )
    consumed = ends["length"].inputs["artifacts"]["data"][0]
    assert consumed["sha256"] == made["sha256"] and consumed["uri"] == made["uri"]
    assert ends["length"].outputs["parameters"] == {"Output": 5}
    assert ends["make"].inputs["parameters"] == {"text": "hello"}
    assert "def make(" in (ends["make"].source or "")
    assert ends["make"].component == "comp-make" and ends["make"].executor == "exec-make"
    assert rec.events[-1][1].status == "SUCCEEDED" and rec.events[-1][1].run_id == s.run_id


def test_status_line_cost_and_runs_show(run_kfp: Any, workbench_home: Path) -> None:
    @dsl.component(base_image=IMG)
    def busy() -> str:
        import time

        from workbench_dsl import _env

        _env.set_status("3/10 trials, best 0.93")
        time.sleep(1.5)
        return "ok"

    @dsl.pipeline(name="busy")
    def p() -> str:
        t = busy()
        kubernetes.add_pod_annotation(t, "workbench.dev/cost-per-hour", "3600")
        kubernetes.add_pod_label(t, "workbench.dev/profile", "cpu-small")
        return t.output

    class WhileRunning(BaseObserver):
        """What another process (`workbench runs show`) sees while the task still runs."""

        seen: list[str | None] = []

        def on_task_status(self, task: str, line: str) -> None:
            from workbench_dsl.engine.run_view import run_details

            store = RunStore(workbench_home / "runs.db")
            details = run_details(store, store.find_run(self.run_id))
            shown = next(t for t in details["tasks"] if t["name"] == task)
            assert shown["status"] == "RUNNING"
            self.seen.append(shown["status_line"])

        def on_run_start(self, run: RunInfo) -> None:
            self.run_id = run.run_id

    rec, live = Recorder(), WhileRunning()
    s = run_kfp(p, observers=[rec, live])
    assert s.status == "SUCCEEDED"
    assert ("status", ("busy", "3/10 trials, best 0.93")) in rec.events
    assert live.seen == ["3/10 trials, best 0.93"]
    assert not s.notices  # the DSL's own label and annotation are no news
    row = RunStore(workbench_home / "runs.db").tasks(s.run_id)[0]
    assert row["status_line"] == "3/10 trials, best 0.93"
    assert row["cost_per_hour"] == 3600.0
    assert row["cost"] == pytest.approx(row["duration_s"], rel=1e-6)  # 1 $/s
    assert s.cost == pytest.approx(row["cost"])


def test_resume_reruns_a_task_whose_inputs_changed_meaning(
    run_kfp: Any, workbench_home: Path
) -> None:
    """A completed task is reused on resume only with the same input key."""
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    s = run_kfp(cached_pipeline)
    store = RunStore(workbench_home / "runs.db")
    with store.tx() as c:  # pretend it was interrupted after `make`, with a stale key for `length`
        c.execute("UPDATE runs SET status='FAILED' WHERE run_id=?", (s.run_id,))
        c.execute(
            "UPDATE tasks SET input_key='stale' WHERE run_id=? AND task='length'", (s.run_id,)
        )
    r = execute.resume(s.run_id, root=LocalRoot(workbench_home))
    by_name = {t["name"]: t for t in r.tasks}
    assert r.status == "SUCCEEDED" and r.outputs == {"Output": 3}
    rows = {t["task"]: t for t in store.tasks(s.run_id)}
    assert rows["make"]["reused"] == 1
    assert by_name["length"]["cached"] or rows["length"]["reused"] == 0
