"""Broken and hostile pipeline files are refused before anything is recorded or run.

Each case starts from a small pipeline compiled by KFP and breaks one thing the
way a hand edit, another tool or an attacker would. Before these checks, some
ran and failed halfway ("internal error: the scheduler stalled" for a cycle),
some hung (a component containing itself, a YAML alias bomb), one crashed the
interpreter (YAML nested 100,000 deep: libyaml recursed in C), and task names
with ``/`` or ``..`` put files outside the run's folder.
"""

import copy
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import compiler, dsl

from workbench_dsl.engine import execute
from workbench_dsl.engine.store import RunStore
from workbench_dsl.errors import UsageError
from workbench_dsl.paths import LocalRoot

REPO = Path(__file__).resolve().parents[2]


@dsl.component(base_image="python:3.11")
def inc(x: int) -> int:
    return x + 1


@dsl.container_component
def echo(msg: str) -> dsl.ContainerSpec:
    return dsl.ContainerSpec(image="alpine", command=["echo"], args=[msg])


@dsl.pipeline(name="base")
def base(x: int = 1) -> None:
    a = inc(x=x)
    inc(x=a.output)
    echo(msg="hi")


@pytest.fixture(scope="module")
def base_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("spec") / "base.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(base, str(path))
    return path.read_text()


def _tasks(d: dict[str, Any]) -> dict[str, Any]:
    return d["root"]["dag"]["tasks"]  # type: ignore[no-any-return]


def _rename(d: dict[str, Any], new: str) -> None:
    _tasks(d)[new] = _tasks(d).pop("echo")


def _cycle(d: dict[str, Any]) -> None:
    _tasks(d)["inc"]["dependentTasks"] = ["inc-2"]


def _data_cycle(d: dict[str, Any]) -> None:
    _tasks(d)["inc"]["inputs"]["parameters"]["x"] = {
        "taskOutputParameter": {"outputParameterKey": "Output", "producerTask": "inc-2"}
    }


def _recursive(d: dict[str, Any]) -> None:
    ref = {"componentRef": {"name": "comp-loop"}, "taskInfo": {"name": "x"}}
    d["components"]["comp-loop"] = {"dag": {"tasks": {"x": ref}}}
    _tasks(d)["loop"] = copy.deepcopy(ref)


def _nested(d: dict[str, Any]) -> None:
    leaf = {"componentRef": {"name": "comp-inc"}, "taskInfo": {"name": "leaf"}}
    leaf["inputs"] = {"parameters": {"x": {"runtimeValue": {"constant": 1}}}}
    for i in range(150, 0, -1):
        d["components"][f"comp-n{i}"] = {"dag": {"tasks": {"t": leaf}}}
        leaf = {"componentRef": {"name": f"comp-n{i}"}, "taskInfo": {"name": "t"}}
    _tasks(d)["t"] = leaf


def _rename_output(new: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        outs = d["components"]["comp-inc"]["outputDefinitions"]["parameters"]
        outs[new] = outs.pop("Output")
        sel = _tasks(d)["inc-2"]["inputs"]["parameters"]["x"]["taskOutputParameter"]
        sel["outputParameterKey"] = new

    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        d[last] = value

    return change


_ECHO_ARGS = "deploymentSpec.executors.exec-echo.container.args"
_INC2_X = "root.dag.tasks.inc-2.inputs.parameters.x.taskOutputParameter"

BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "cycle": (_cycle, "cycle between tasks: inc -> inc-2 -> inc"),
    "data cycle": (_data_cycle, "cycle between tasks: inc -> inc-2 -> inc"),
    "self dependency": (
        _set("root.dag.tasks.inc.dependentTasks", ["inc"]),
        "cycle between tasks: inc -> inc",
    ),
    "missing dependency": (
        _set("root.dag.tasks.inc.dependentTasks", ["nope"]),
        "task 'inc' depends on 'nope', which is not a task of the same DAG",
    ),
    "missing producer": (
        _set(f"{_INC2_X}.producerTask", "nope"),
        "task 'inc-2' depends on 'nope'",
    ),
    "missing output": (
        _set(f"{_INC2_X}.outputParameterKey", "nope"),
        "reads output 'nope' of 'inc', which has no such output parameter",
    ),
    "missing pipeline input": (
        _set("root.dag.tasks.inc.inputs.parameters.x", {"componentInputParameter": "nope"}),
        "reads 'nope', which is not an input parameter of the enclosing DAG",
    ),
    "missing component": (
        _set("root.dag.tasks.inc.componentRef.name", "comp-nope"),
        "task 'inc': component 'comp-nope' is not defined",
    ),
    "missing executor": (
        _set("components.comp-inc.executorLabel", "exec-nope"),
        "executor 'exec-nope' is not defined",
    ),
    "missing placeholder input": (
        _set(_ECHO_ARGS, ["{{$.inputs.parameters['missing']}}"]),
        "placeholder {{$.inputs.parameters['missing']}} names no input parameter",
    ),
    "missing placeholder output": (
        _set(_ECHO_ARGS, ["{{$.outputs.artifacts['missing'].path}}"]),
        "names no output artifact",
    ),
    "escaped 60 times": (
        # Each escape can double a value: this took 24 GB before the kernel killed the run.
        _set(_ECHO_ARGS, ["{{$.inputs.parameters['msg'].json_escape[60]}}"]),
        "json_escape[N] takes N of at most 4",
    ),
    "component contains itself": (_recursive, "'comp-loop' contains itself"),
    "DAGs nested 150 deep": (_nested, "nested 151 deep; at most 100 levels can run here"),
    "negative parallelism": (
        # It ended the run FAILED with 0 tasks and no reason.
        _set("root.dag.tasks.inc.iteratorPolicy", {"parallelismLimit": -1}),
        "parallelismLimit -1 is not a whole number of 0 or more",
    ),
    "loop items not a list": (
        _set("root.dag.tasks.inc.parameterIterator", {"itemInput": "x", "items": {"raw": "{[}"}}),
        "the ParallelFor items are not a JSON list: '{[}'",
    ),
    "task is a string": (_set("root.dag.tasks.inc", "hello"), "task 'inc' is not a mapping"),
    "dependencies are a string": (
        _set("root.dag.tasks.inc-2.dependentTasks", "inc"),
        "'dependentTasks' is not a list",
    ),
    "components are a list": (_set("components", [1, 2]), "'components' is not a mapping"),
    "output name climbs out": (
        _rename_output("../../../../../../tmp/escaped"),
        "output parameter name '../../../../../../tmp/escaped' cannot be empty",
    ),
    "output name too long": (_rename_output("o" * 300), "(302 characters) cannot be empty"),
    "task name climbs out": (
        lambda d: _rename(d, "../../../../escaped"),
        "a task name cannot be empty or hold '/'",
    ),
    "absolute task name": (lambda d: _rename(d, "/tmp/escaped"), "cannot be empty or hold '/'"),
}


def _refused(text: str, home: Path, match: str) -> None:
    with pytest.raises(UsageError) as e:
        execute.start(text, {}, root=LocalRoot(home))
    assert match in str(e.value)
    assert "\n" not in str(e.value)
    assert RunStore(home / "runs.db").list_runs() == []
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_spec_is_refused_before_anything_is_recorded(
    case: str, base_text: str, workbench_home: Path
) -> None:
    change, match = BROKEN[case]
    d = yaml.safe_load(base_text)
    change(d)
    _refused(yaml.safe_dump(d, allow_unicode=True), workbench_home, match)


_LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("case", "text", "match"),
    [
        ("flow nested 100,000 deep", "x: " + "[" * 100_000 + "]" * 100_000, "nested more than 200"),
        (
            "block nested 3,000 deep",
            "x:\n" + "".join(" " * i + "a:\n" for i in range(3000)) + " " * 3000 + "b: 1\n",
            "nested more than 200",
        ),
        ("JSON nested 100,000 deep", '{"a":' * 100_000 + "1" + "}" * 100_000, "nested more"),
        ("an alias bomb", _LAUGHS, "aliases expand to more than 1,000,000 values"),
        ("an alias inside itself", "z: &s [1, *s]\n", "an alias refers to a value that holds it"),
    ],
)
def test_yaml_that_nests_or_expands_without_bound_is_refused(
    case: str, text: str, match: str, base_text: str, workbench_home: Path
) -> None:
    whole = text if text.startswith("{") else text + "\n" + base_text
    _refused(whole, workbench_home, match)


def test_a_deep_json_parameter_is_refused_in_one_short_line(
    base_text: str, workbench_home: Path
) -> None:
    d = yaml.safe_load(base_text)
    d["root"]["inputDefinitions"]["parameters"]["cfg"] = {"parameterType": "STRUCT"}
    deep = '{"a":' * 20_000 + "1" + "}" * 20_000
    with pytest.raises(UsageError) as e:
        execute.start(
            yaml.safe_dump(d), {"cfg": deep}, from_cli=True, root=LocalRoot(workbench_home)
        )
    assert "JSON nested more than 100 levels deep" in str(e.value)
    assert len(str(e.value)) < 300
    assert RunStore(workbench_home / "runs.db").list_runs() == []


def test_the_cli_refuses_a_cycle_with_one_line_and_exit_2(
    base_text: str, tmp_path: Path, workbench_home: Path
) -> None:
    d = yaml.safe_load(base_text)
    _cycle(d)
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(d))
    env = dict(os.environ, PYTHONPATH=str(REPO), WORKBENCH_HOME=str(workbench_home))
    r = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "run", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert (r.stdout + r.stderr).strip().splitlines() == [
        "error: cannot run 'base' locally: cycle between tasks: inc -> inc-2 -> inc"
    ]
    assert not (workbench_home / "runs").exists() or not any((workbench_home / "runs").iterdir())


@dsl.pipeline(name="loop")
def loop() -> None:
    with dsl.ParallelFor([1, 2, 3]) as item:
        inc(x=item)


def test_a_run_that_fails_without_a_failed_task_still_says_why(
    tmp_path: Path, workbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loop whose iterations can never start (what a parallelismLimit of -1 did before
    # it was refused up front): the run ended FAILED with no failure to show.
    from workbench_dsl.engine import graph

    monkeypatch.setattr(graph, "parallelism", lambda node: -1)
    path = tmp_path / "loop.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(loop, str(path))
    summary = execute.start(path.read_text(), {}, root=LocalRoot(workbench_home))
    assert summary.status == "FAILED"
    assert summary.failures == [
        {"task": "for-loop-2", "error": "3 iteration(s) not_run", "log_path": None}
    ]
