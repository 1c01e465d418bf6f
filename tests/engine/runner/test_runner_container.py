"""Container components through the task runner: host commands with every placeholder resolved."""

import json
import os
import warnings
from pathlib import Path
from typing import Optional

import pytest
from kfp import dsl
from kfp.dsl import (
    ConcatPlaceholder,
    ContainerSpec,
    Dataset,
    IfPresentPlaceholder,
    Input,
    Output,
    OutputPath,
)
from runner_helpers import make_spec

from workbench_dsl.engine.runner import TaskRunner

warnings.filterwarnings("ignore", message="The default base_image")


@dsl.container_component
def io_kinds(
    text: str,
    count: int,
    ratio: float,
    items: list,
    data: Input[Dataset],
    out_text: OutputPath(str),
    out_data: Output[Dataset],
):
    script = (
        'printf "%s|%s|%s|%s" "$0" "$1" "$2" "$3" > "$7"; '
        'cat "$4" > "$8"; printf "%s" "$5" >> "$8"; printf "%s" "$6" > "$8.meta"'
    )
    return ContainerSpec(
        image="alpine:3.19",
        command=["sh", "-c", script],
        args=[
            text,
            count,
            ratio,
            items,
            data.path,
            data.uri,
            data.metadata,
            out_text,
            out_data.path,
        ],
    )


def test_input_and_output_placeholders(runner: TaskRunner, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("DATA:")
    spec = make_spec(
        io_kinds,
        tmp_path,
        params={"text": "hello world", "count": 3, "ratio": 2.0, "items": [1, "a"]},
        artifacts={"data": data},
    )
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    # Numbers as a cluster prints them (2.0 -> 2), lists as compact JSON; raw strings back.
    assert outcome.executor_output["parameterValues"] == {"out_text": 'hello world|3|2|[1,"a"]'}
    (art,) = outcome.executor_output["artifacts"]["out_data"]["artifacts"]
    assert Path(art["uri"]).read_text() == f"DATA:{data}"
    assert json.loads(Path(art["uri"] + ".meta").read_text()) == {"source": "test"}
    assert outcome.notices == [
        "container image alpine:3.19 is not used locally; its command runs on the host"
    ]


@dsl.container_component
def structured(required: str, out: OutputPath(str), optional: Optional[str] = None):  # noqa: UP045 (KFP reads Optional)
    return ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'printf "%s " "$@" > "$0"'],
        args=[
            out,
            ConcatPlaceholder(["pre-", required, "-post"]),
            IfPresentPlaceholder(
                input_name="optional", then=["--opt", optional], else_=["--no-opt"]
            ),
            f"fstring-{required}",
            dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
            dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        ],
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"required": "r"}, "pre-r-post --no-opt fstring-r structured runner-test-run-1 "),
        (
            {"required": "r", "optional": "o"},
            "pre-r-post --opt o fstring-r structured runner-test-run-1 ",
        ),
    ],
)
def test_concat_ifpresent_fstring_and_names(
    runner: TaskRunner, tmp_path: Path, params: dict, expected: str
) -> None:
    spec = make_spec(structured, tmp_path, params=params, task="structured")
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"]["out"] == expected


@dsl.container_component
def writes_executor_output(out: OutputPath(str)):
    return ContainerSpec(
        image="alpine",
        command=[
            "sh",
            "-c",
            'mkdir -p "$(dirname "$0")"; echo \'{"parameterValues": {"out": "from json"}}\' > "$0"',
        ],
        args=[dsl.PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER],
    )


def test_executor_output_json_is_honored(runner: TaskRunner, tmp_path: Path) -> None:
    outcome = runner.submit(make_spec(writes_executor_output, tmp_path)).result(timeout=60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"] == {"out": "from json"}


@dsl.container_component
def needs_gsutil(url: str, out: OutputPath(str)):
    return ContainerSpec(
        image="google/cloud-sdk", command=["workbench-no-such-gsutil", "cp", url, out]
    )


def test_missing_program_fails_clearly(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(needs_gsutil, tmp_path, params={"url": "gs://b/x"})
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "FAILED"
    assert outcome.error == (
        "program 'workbench-no-such-gsutil' not found on this machine; the component expects "
        "image google/cloud-sdk: install it here or run the pipeline on a cluster"
    )


@dsl.container_component
def script_needs_program(out: OutputPath(str)):
    return ContainerSpec(
        image="google/cloud-sdk:slim",
        command=["sh", "-c", 'echo start; workbench-no-such-tool cat x > "$0"'],
        args=[out],
    )


def test_missing_program_inside_a_script(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(script_needs_program, tmp_path)
    outcome = runner.submit(spec).result(timeout=60)
    assert (outcome.status, outcome.exit_code) == ("FAILED", 127)
    assert outcome.error is not None
    assert outcome.error.startswith("program 'workbench-no-such-tool' not found on this machine")
    assert "start" in spec.log_path.read_text()


@dsl.container_component
def exits(code: int):
    return ContainerSpec(
        image="alpine", command=["sh", "-c", 'echo "bye $0"; exit "$0"'], args=[code]
    )


def test_exit_code(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(exits, tmp_path, params={"code": 4})
    outcome = runner.submit(spec).result(timeout=60)
    assert (outcome.status, outcome.exit_code, outcome.error) == ("FAILED", 4, "exited with code 4")
    assert "bye 4" in spec.log_path.read_text()


@dsl.container_component
def forgets_output(out: OutputPath(str)):
    return ContainerSpec(image="alpine", command=["true"])


def test_missing_output_parameter(runner: TaskRunner, tmp_path: Path) -> None:
    outcome = runner.submit(make_spec(forgets_output, tmp_path)).result(timeout=60)
    assert outcome.status == "FAILED"
    assert outcome.error is not None and outcome.error.startswith(
        "output parameter 'out' never written"
    )


def test_no_command_means_the_image_entrypoint(runner: TaskRunner, tmp_path: Path) -> None:
    spec = make_spec(
        exits,
        tmp_path,
        params={"code": 0},
        executor={"container": {"image": "argostub/createpvc"}},
    )
    outcome = runner.submit(spec).result(timeout=60)
    assert outcome.status == "FAILED"
    assert outcome.error == (
        "the component has no command: it runs the entrypoint of image argostub/createpvc, "
        "which cannot run locally"
    )


@dsl.container_component
def sleepy(seconds: int):
    return ContainerSpec(
        image="alpine", command=["sh", "-c", 'sleep "$0" & sleep "$0"; wait'], args=[seconds]
    )


def test_container_timeout(runner: TaskRunner, tmp_path: Path) -> None:
    outcome = runner.submit(
        make_spec(sleepy, tmp_path, params={"seconds": 30}, timeout=0.5)
    ).result(timeout=30)
    assert (outcome.status, outcome.error) == ("TIMED_OUT", "timed out after 0.5s")


def test_unknown_placeholder_fails_clearly(runner: TaskRunner, tmp_path: Path) -> None:
    executor = {"container": {"image": "alpine", "command": ["echo", "{{$.inputs.nonsense}}"]}}
    spec = make_spec(exits, tmp_path, params={"code": 0}, executor=executor)
    outcome = runner.submit(spec).result(timeout=60)
    assert (outcome.status, outcome.error) == (
        "FAILED",
        "cannot resolve the component's command: unknown placeholder {{$.inputs.nonsense}}",
    )


@dsl.container_component
def bashism(word: str):
    return ContainerSpec(image="busybox", command=["sh", "-ec", '[[ "$0" == x ]]'], args=[word])


def test_an_image_shell_script_runs_under_the_hosts_bash(
    runner: TaskRunner, tmp_path: Path
) -> None:
    import shutil

    if shutil.which("bash") is None:
        pytest.skip("no bash on this machine")
    ok = runner.submit(make_spec(bashism, tmp_path, params={"word": "x"})).result(timeout=60)
    assert ok.status == "SUCCEEDED", ok.error
    no = runner.submit(make_spec(bashism, tmp_path, params={"word": "y"}, task="step2")).result(
        timeout=60
    )
    assert (no.status, no.error) == ("FAILED", "exited with code 1")
