"""Artifacts never lead outside themselves: links are materialised or refused at ingest.

Written as a task that tries to publish what is not its own would: a link to
``/proc/self/environ`` inside a directory artifact and as the output itself.
"""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl
from kfp.dsl import Dataset, Output

from workbench_dsl.engine.cas import ArtifactStore, LinkError, digest

warnings.filterwarnings("ignore", message="The default base_image")


def test_a_link_inside_the_artifact_is_stored_as_a_copy(tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "weights").mkdir(parents=True)
    (src / "weights" / "w.bin").write_bytes(b"abc")
    os.symlink("weights/w.bin", src / "latest.bin")
    os.symlink("weights", src / "current")
    store = ArtifactStore(tmp_path / "artifacts")
    stored = store.ingest(src, "model", move=True)
    out = Path(stored.uri)
    assert not os.path.islink(out / "latest.bin") and (out / "latest.bin").read_bytes() == b"abc"
    assert not os.path.islink(out / "current") and (out / "current" / "w.bin").exists()
    assert digest(out)[0] == stored.sha256  # the digest of what is stored
    assert store.verify(stored.uri, stored.sha256, stored.size)
    assert not src.exists()  # moved: nothing left in the workdir


@pytest.mark.parametrize("target", ["/proc/self/environ", "../../outside.txt", "missing.txt", "."])
def test_a_link_leading_out_of_the_artifact_is_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    src = tmp_path / "work" / "data"
    src.mkdir(parents=True)
    (src / "ok.txt").write_text("fine")
    os.symlink(target, src / "leak")
    store = ArtifactStore(tmp_path / "artifacts")
    with pytest.raises(LinkError, match=r"leak is a symbolic link to"):
        store.ingest(src, "data", move=True)
    assert (src / "ok.txt").exists()  # refused: nothing taken, nothing stored
    assert not list((tmp_path / "artifacts").glob("??/*"))


def test_an_output_that_is_a_link_is_refused_an_importer_path_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("content")
    link = tmp_path / "link.txt"
    os.symlink(real, link)
    store = ArtifactStore(tmp_path / "artifacts")
    with pytest.raises(LinkError, match="it is a symbolic link to"):
        store.ingest(link, "out", move=True)
    stored = store.ingest(link, "out", move=False, follow=True)
    assert Path(stored.uri).read_text() == "content"
    assert digest(Path(stored.uri))[0] == stored.sha256


@dsl.component
def environ_in_a_folder(data: Output[Dataset]):
    import os

    os.makedirs(data.path)
    with open(os.path.join(data.path, "rows.csv"), "w") as f:
        f.write("a,b\n")
    os.symlink("/proc/self/environ", os.path.join(data.path, "env"))


@dsl.component
def environ_as_the_output(data: Output[Dataset]):
    import os

    os.symlink("/proc/self/environ", data.path)


@dsl.pipeline(name="links-in-folder")
def links_in_folder():
    environ_in_a_folder()


@dsl.pipeline(name="link-as-output")
def link_as_output():
    environ_as_the_output()


@pytest.mark.parametrize(
    ("pipeline", "step", "why"),
    [
        (links_in_folder, "environ-in-a-folder", "env is a symbolic link to /proc/self/environ"),
        (link_as_output, "environ-as-the-output", "it is a symbolic link to /proc/self/environ"),
    ],
)
def test_a_task_cannot_publish_proc_self_environ(
    run_kfp: Any, pipeline: Any, step: str, why: str, workbench_home: Path
) -> None:
    summary = run_kfp(pipeline)
    assert summary.status == "FAILED"
    assert {t["name"]: t["status"] for t in summary.tasks}[step] == "FAILED"
    error = summary.failures[0]["error"]
    assert "output artifact 'data'" in error and why in error
    # Nothing of the engine's environment reached the store.
    marker = os.environ.get("PATH", "").encode()
    for dirpath, _, files in os.walk(workbench_home / "artifacts"):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                assert marker not in Path(full).read_bytes()


NESTED = """
from kfp import dsl

@dsl.component
def hello() -> str:
    return "hello"

@dsl.pipeline(name="tiny")
def tiny():
    hello()
"""


@dsl.component
def runs_workbench(source: str) -> str:
    import os
    import subprocess
    import sys
    import tempfile

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "tiny.py")
    with open(path, "w") as f:
        f.write(source)
    cmd = [sys.executable, "-m", "workbench_dsl", "run", path, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"workbench run exited {done.returncode}: {done.stderr[-2000:]}")
    import json

    status = json.loads(done.stdout)["status"]
    if status != "SUCCEEDED":
        raise RuntimeError(f"the nested run ended {status}")
    return status


@dsl.pipeline(name="outer")
def outer(source: str):
    runs_workbench(source=source)


@pytest.mark.slow
def test_workbench_run_inside_a_task(run_kfp: Any) -> None:
    summary = run_kfp(outer, {"source": textwrap.dedent(NESTED)})
    assert summary.status == "SUCCEEDED", summary.failures  # the task checked the nested run


def test_the_checker_of_nested_runs_can_fail() -> None:
    # What a task saw before: kfp in runtime mode cannot compile a pipeline.
    env = {**os.environ, "_KFP_RUNTIME": "true"}
    code = "from kfp import dsl; dsl.pipeline"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert done.returncode != 0
