"""A rerun of the same YAML reuses its parsed documents (kept as JSON in the run store)."""

from pathlib import Path

import pytest
import yaml
from kfp import dsl

from workbench_dsl.engine import execute
from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import LocalRoot


@dsl.component(base_image="python:3.11")
def double(x: int) -> int:
    return 2 * x


@dsl.pipeline(name="twice")
def twice(n: int = 3) -> int:
    return double(x=double(x=n).output).output


def test_a_rerun_parses_no_yaml_and_records_the_same(
    compile_yaml, workbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = compile_yaml(twice).read_text()
    root = LocalRoot(workbench_home)
    first = execute.start(text, root=root)

    def no_yaml(*a: object, **k: object) -> None:
        raise AssertionError("YAML parsed again")

    monkeypatch.setattr(yaml, "load_all", no_yaml)
    second = execute.start(text, root=root)
    assert first.status == second.status == "SUCCEEDED"
    assert first.outputs == second.outputs == {"Output": 12}
    assert [t["cached"] for t in second.tasks] == [True, True]
    store = RunStore(root.runs_db)
    row = store.get_run(second.run_id)
    assert row is not None and row["spec_text"] == text  # the run still records the YAML
    store.close()


def test_yaml_that_json_cannot_hold_exactly_is_parsed_every_time(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    text = (
        "pipelineInfo: {name: dated}\n"
        "root:\n  dag: {tasks: {}}\n  inputDefinitions:\n    parameters:\n"
        "      day: {parameterType: STRING, defaultValue: 2024-01-02}\n"
    )
    spec = execute.parse_spec(text, store)
    again = execute.parse_spec(text, store)
    assert spec.spec == again.spec == PipelineSpec.parse(text).spec
    assert store.conn.execute("SELECT COUNT(*) FROM parsed_specs").fetchone()[0] == 0


def test_the_kept_documents_equal_a_fresh_parse(compile_yaml, tmp_path: Path) -> None:
    text = compile_yaml(twice).read_text()
    store = RunStore(tmp_path / "runs.db")
    fresh = execute.parse_spec(text, store)
    kept = execute.parse_spec(text, store)
    assert store.conn.execute("SELECT COUNT(*) FROM parsed_specs").fetchone()[0] == 1
    assert kept.spec == fresh.spec and kept.platform == fresh.platform and kept.text == text
    assert list(kept.spec) == list(fresh.spec)  # key order too


def test_a_run_leaves_the_garbage_collector_as_it_found_it(
    compile_yaml, workbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    before = gc.get_threshold()
    seen = []
    real = execute.Orchestrator.run

    def run(self):  # type: ignore[no-untyped-def]
        seen.append(gc.get_threshold())
        return real(self)

    monkeypatch.setattr(execute.Orchestrator, "run", run)
    s = execute.start(compile_yaml(twice).read_text(), root=LocalRoot(workbench_home))
    assert s.status == "SUCCEEDED"
    assert seen and seen[0][0] >= 10_000  # fewer collections while it ran
    assert gc.get_threshold() == before
