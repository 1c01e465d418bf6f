"""Placeholder resolution against an ExecutorInput: every kind a compiled component can hold."""

import json

import pytest

from workbench_dsl.engine.placeholders import Resolver, RunContext, format_value

CTX = RunContext.for_task(
    run_id="20260101-abc",
    task="for-loop-2[3]/train",
    pipeline="churn",
    pipeline_root="/root/runs/r",
    workspace="/root/runs/r/workspace",
    create_time_utc="2026-01-01T00:00:00.000000Z",
)

EI = {
    "inputs": {
        "parameterValues": {
            "s": "text",
            "n": 3.0,
            "f": 0.25,
            "b": False,
            "l": [1, 2],
            "d": {"k": "v"},
        },
        "artifacts": {
            "data": {
                "artifacts": [
                    {"name": "a0", "uri": "/art/a0", "metadata": {"rows": 5}},
                    {"name": "a1", "uri": "/art/a1", "metadata": {}},
                ]
            }
        },
    },
    "outputs": {
        "parameters": {"p": {"outputFile": "/w/outputs/p"}},
        "artifacts": {"m": {"artifacts": [{"name": "m", "uri": "/w/artifacts/m", "metadata": {}}]}},
        "outputFile": "/w/executor_output.json",
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{$.inputs.parameters['s']}}", "text"),
        ("{{$.inputs.parameters['n']}}", "3"),
        ("{{$.inputs.parameters['f']}}", "0.25"),
        ("{{$.inputs.parameters['b']}}", "false"),
        ("{{$.inputs.parameters['l']}}", "[1,2]"),
        ("{{$.inputs.parameters['d']}}", '{"k":"v"}'),
        ("{{$.inputs.parameters['absent']}}", "null"),
        ("{{$.inputs.artifacts['data'].path}}", "/art/a0"),
        ("{{$.inputs.artifacts['data'].uri}}", "/art/a0"),
        ("{{$.inputs.artifacts['data'].metadata}}", '{"rows": 5}'),
        ("{{$.inputs.artifacts['data'].metadata['rows']}}", "5"),
        ("{{$.outputs.parameters['p'].output_file}}", "/w/outputs/p"),
        ("{{$.outputs.artifacts['m'].path}}", "/w/artifacts/m"),
        ("{{$.outputs.artifacts['m'].uri}}", "/w/artifacts/m"),
        ("{{$.outputs.output_file}}", "/w/executor_output.json"),
        ("{{$.pipeline_job_name}}", "churn-20260101-abc"),
        ("{{$.pipeline_job_resource_name}}", "churn-20260101-abc"),
        ("{{$.pipeline_task_name}}", "train"),
        ("{{$.pipeline_root}}", "/root/runs/r"),
        ("{{$.pipeline_job_create_time_utc}}", "2026-01-01T00:00:00.000000Z"),
        ("/kfp-workspace/data", "/root/runs/r/workspace/data"),
        ("pre-{{$.inputs.parameters['s']}}-{{$.inputs.parameters['n']}}", "pre-text-3"),
        ('{"x": "{{$.inputs.parameters[\'s\']}}"}', '{"x": "text"}'),
    ],
)
def test_single_placeholders(text: str, expected: str) -> None:
    assert Resolver(EI, CTX).resolve_string(text) == expected


def test_list_of_artifacts_and_executor_input() -> None:
    r = Resolver(EI, CTX)
    listed = json.loads(r.resolve_string("{{$.inputs.artifacts['data']}}"))
    assert [a["uri"] for a in listed] == ["/art/a0", "/art/a1"]
    assert json.loads(r.resolve_string("{{$}}")) == EI


def test_json_escape() -> None:
    r = Resolver(EI, CTX)
    escaped = r.resolve_string('{"payload": "{{$.json_escape[1]}}"}')
    assert json.loads(json.loads(escaped)["payload"]) == EI
    assert r.resolve_string("{{$.inputs.parameters['d'].json_escape[1]}}") == '{\\"k\\":\\"v\\"}'


def test_uuids_are_stable_per_run_and_task() -> None:
    def ctx(task: str) -> RunContext:
        return RunContext.for_task(
            run_id="20260101-abc",
            task=task,
            pipeline="churn",
            pipeline_root="",
            workspace="",
            create_time_utc="",
        )

    again, other = ctx("for-loop-2[3]/train"), ctx("for-loop-2[4]/train")
    assert (again.job_uuid, again.task_uuid) == (CTX.job_uuid, CTX.task_uuid)
    assert other.job_uuid == CTX.job_uuid and other.task_uuid != CTX.task_uuid


def test_values_are_never_rescanned() -> None:
    ei = {"inputs": {"parameterValues": {"a": "{{$.inputs.parameters['b']}}", "b": "B"}}}
    r = Resolver(ei, CTX)
    # A parameter *value* that holds a placeholder (an f-string) is resolved first ...
    assert r.resolve_executor_input()["inputs"]["parameterValues"]["a"] == "B"
    # ... but a value substituted into a command line is taken literally.
    raw = Resolver({"inputs": {"parameterValues": {"x": "{{$.pipeline_root}}"}}}, CTX)
    assert raw.resolve_string("{{$.inputs.parameters['x']}}") == "{{$.pipeline_root}}"


def test_structured_placeholders() -> None:
    r = Resolver(EI, CTX)
    concat = json.dumps({"Concat": ["a-", "{{$.inputs.parameters['s']}}", "-z"]})
    present = json.dumps(
        {"IfPresent": {"InputName": "s", "Then": ["--s", "{{$.inputs.parameters['s']}}"]}}
    )
    absent = json.dumps(
        {"IfPresent": {"InputName": "nope", "Then": ["--x"], "Else": ["--default", "1"]}}
    )
    dropped = json.dumps({"IfPresent": {"InputName": "nope", "Then": ["--x"]}})
    nested = json.dumps(
        {
            "Concat": [
                "v=",
                {"IfPresent": {"InputName": "data", "Then": "{{$.inputs.artifacts['data'].uri}}"}},
            ]
        }
    )
    argv = r.resolve_command(["prog", concat, present, absent, dropped, nested])
    assert argv == ["prog", "a-text-z", "--s", "text", "--default", "1", "v=/art/a0"]


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        Resolver(EI, CTX).resolve_string("{{$.inputs.nonsense}}")


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (1.0, "1"), (1e-7, "0.0000001"), (2.5e20, "250000000000000000000"), (True, "true")],
)
def test_format_value_matches_the_cluster(value: object, text: str) -> None:
    assert format_value(value) == text


def test_json_escape_is_bounded_in_count_and_in_size() -> None:
    from workbench_dsl.engine.placeholders import MAX_JSON_ESCAPES

    r = Resolver({"inputs": {"parameterValues": {"q": 'a"b' * 1000}}}, CTX)
    assert r.resolve_string("{{$.inputs.parameters['q'].json_escape[1]}}").startswith('a\\"b')
    with pytest.raises(ValueError, match="json_escape"):
        r.resolve_string(f"{{{{$.inputs.parameters['q'].json_escape[{MAX_JSON_ESCAPES + 1}]}}}}")
    big = Resolver({"inputs": {"parameterValues": {"q": '"' * (5 << 20)}}}, CTX)
    with pytest.raises(
        ValueError, match="passed 64 MiB"
    ):  # 5 MiB of quotes, escaped 4 times: 80 MiB
        big.resolve_string(f"{{{{$.inputs.parameters['q'].json_escape[{MAX_JSON_ESCAPES}]}}}}")
