"""Task names become folder and log names: each its own, inside the run, of a legal length.

Names that differed only in non-ASCII characters (``e-ü``, ``e-é``) shared one work
folder and one log; a 300-character name failed the run with ``OSError: File name
too long`` after it was recorded; ``..`` made a hidden folder one level up.
"""

import warnings
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from workbench_dsl.engine import execute
from workbench_dsl.engine.attempts import safe_path
from workbench_dsl.engine.run_view import run_details
from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import LocalRoot


@pytest.mark.parametrize(
    ("qname", "path"),
    [
        ("train", "train"),
        ("for-loop-2[13]/train", "for-loop-2.13/train"),
        ("outer/inner_1/for-loop-3[0]/t", "outer/inner_1/for-loop-3.0/t"),
    ],
)
def test_plain_names_keep_their_paths(qname: str, path: str) -> None:
    assert safe_path(qname) == path


@pytest.mark.parametrize(
    "names",
    [
        ["e-ü", "e-é", "e-_", "e-?"],
        ["..", ".", "", "_.", "__"],
        ["a.1", "a[1]"],
        ["x" * 300, "x" * 300 + "y", "x" * 100],
    ],
)
def test_unusual_names_get_paths_of_their_own_inside_the_folder(
    names: list[str], tmp_path: Path
) -> None:
    paths = [safe_path(n) for n in names]
    assert len(set(paths)) == len(paths), paths
    for p in paths:
        assert all(len(seg) <= 120 and not seg.startswith(".") for seg in p.split("/")), p
        inside = (tmp_path / "work" / p / "attempt-1").resolve()
        assert inside.is_relative_to(tmp_path / "work")


def test_a_task_under_dags_nested_deep_gets_a_short_path_of_its_own() -> None:
    deep = "/".join(f"{'n' * 90}{i}" for i in range(100))
    paths = {safe_path(f"{deep}/leaf"), safe_path(f"{deep}x/leaf"), safe_path(f"{deep}/other")}
    assert len(paths) == 3
    assert all(len(p) < 200 and p.startswith("~") for p in paths)
    assert safe_path(f"{deep}/leaf").endswith("/leaf")


@dsl.container_component
def say(msg: str, out: dsl.OutputPath(str)) -> dsl.ContainerSpec:  # type: ignore[valid-type]
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", 'printf "%s" "$0" > "$1"; echo "$0"'], args=[msg, out]
    )


@dsl.pipeline(name="names")
def names() -> None:
    say(msg="one")
    say(msg="two")
    say(msg="three")


def test_tasks_whose_names_differ_only_in_unicode_or_are_very_long_keep_their_own_results(
    tmp_path: Path, workbench_home: Path
) -> None:
    path = tmp_path / "names.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(names, str(path))
    d = yaml.safe_load(path.read_text())
    tasks = d["root"]["dag"]["tasks"]
    new = {"say": "e-ü", "say-2": "e-é", "say-3": "l" * 300}
    for old, name in new.items():
        tasks[name] = tasks.pop(old)
        tasks[name]["taskInfo"]["name"] = name
    summary = execute.start(
        yaml.safe_dump(d, allow_unicode=True), {}, root=LocalRoot(workbench_home)
    )
    assert summary.status == "SUCCEEDED", summary.failures
    store = RunStore(workbench_home / "runs.db")
    details = run_details(store, store.find_run(summary.run_id))
    by_name = {t["name"]: t for t in details["tasks"]}
    logs = set()
    for name, msg in zip(new.values(), ["one", "two", "three"], strict=True):
        t = by_name[name]
        assert t["outputs"]["parameters"]["out"] == msg
        log = Path(t["log_path"])
        assert log.read_text().strip() == msg
        assert log.resolve().is_relative_to(workbench_home.resolve())
        logs.add(log)
    assert len(logs) == 3
