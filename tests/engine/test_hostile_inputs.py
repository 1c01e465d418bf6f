"""Artifacts that are not files: refused in one line, and nothing half-copied stays behind.

``--input data=/dev/zero`` (or a named pipe) ended in "internal error: ValueError"
with exit 1; a folder holding a named pipe in "internal error: Error: [(...)]" and a
half-copied folder left in the artifact store's ``.tmp``.
"""

import os
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from workbench_dsl.engine import execute
from workbench_dsl.engine.store import RunStore
from workbench_dsl.errors import UsageError
from workbench_dsl.paths import LocalRoot


@dsl.component(base_image="python:3.11")
def size(data: Input[Dataset]) -> int:
    import os

    return os.path.getsize(data.path) if os.path.isfile(data.path) else -1


@dsl.pipeline(name="takes-data")
def takes_data(data: Input[Dataset]) -> None:
    size(data=data)


@dsl.component(base_image="python:3.11")
def makes_a_pipe(out: Output[Artifact]) -> None:
    import os

    os.makedirs(out.path)
    with open(os.path.join(out.path, "a"), "w") as f:
        f.write("x")
    os.mkfifo(os.path.join(out.path, "p"))


@dsl.pipeline(name="pipe-out")
def pipe_out() -> None:
    makes_a_pipe()


def _leftovers(home: Path) -> list[str]:
    tmp = home / "artifacts" / ".tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []


@pytest.mark.parametrize("kind", ["device", "pipe", "folder with a pipe"])
def test_an_input_artifact_that_is_not_files_is_refused_in_one_line(
    kind: str,
    compile_yaml,
    workbench_home: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    if kind == "device":
        path = "/dev/zero"
    elif kind == "pipe":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    else:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "a").write_text("x")
        os.mkfifo(tmp_path / "d" / "p")
        path = str(tmp_path / "d")
    text = compile_yaml(takes_data).read_text()
    with pytest.raises(UsageError) as e:
        execute.start(text, {}, root=LocalRoot(workbench_home), inputs={"data": path})
    assert str(e.value).startswith("input artifact 'data'") and "\n" not in str(e.value)
    assert "neither a file" in str(e.value)
    assert RunStore(workbench_home / "runs.db").list_runs() == []
    assert _leftovers(workbench_home) == []


def test_a_task_that_leaves_a_pipe_in_its_output_fails_saying_so(
    compile_yaml,
    workbench_home: Path,  # type: ignore[no-untyped-def]
) -> None:
    text = compile_yaml(pipe_out).read_text()
    summary = execute.start(text, {}, root=LocalRoot(workbench_home))
    assert summary.status == "FAILED"
    (failure,) = summary.failures
    assert "p in " in failure["error"] and "neither a file, a folder nor a link" in failure["error"]
    assert _leftovers(workbench_home) == []
