"""Parameter typing by KFP ParameterType: -p strings, defaults, outputs."""

from __future__ import annotations

import pytest

from workbench_dsl.engine.params import (
    ParameterTypeError,
    argument_problems,
    coerce,
    from_text,
    output_value,
    pipeline_arguments,
)
from workbench_dsl.errors import UsageError

DEFS = {
    "rows": {"parameterType": "NUMBER_INTEGER", "defaultValue": 5.0, "isOptional": True},
    "rate": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.5, "isOptional": True},
    "name": {"parameterType": "STRING"},
    "flag": {"parameterType": "BOOLEAN", "defaultValue": False, "isOptional": True},
    "items": {"parameterType": "LIST", "defaultValue": [1, 2], "isOptional": True},
    "conf": {"parameterType": "STRUCT", "isOptional": True},
}


def test_cli_values_are_typed_and_defaults_applied() -> None:
    out = pipeline_arguments(
        DEFS,
        {"name": "x", "flag": "true", "items": "[1, 2, 3]", "conf": '{"a": 1}', "rate": "2"},
        from_cli=True,
    )
    assert out == {
        "rows": 5,  # KFP wrote 5.0; the component gets an int
        "rate": 2.0,
        "name": "x",
        "flag": True,
        "items": [1, 2, 3],
        "conf": {"a": 1},
    }
    assert isinstance(out["rows"], int)
    assert "conf" in out


def test_optional_without_default_is_left_out() -> None:
    out = pipeline_arguments(DEFS, {"name": "x"}, from_cli=True)
    assert "conf" not in out


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"name": "x", "bogus": "1"},
            "unknown parameter 'bogus' (pipeline parameters: conf, flag, items, name, rate, rows)",
        ),
        ({}, "missing required parameter: name (a string)"),
        ({"name": "x", "rows": "2.5"}, "parameter 'rows' expects an integer, got '2.5'"),
        ({"name": "x", "rows": "many"}, "parameter 'rows' expects an integer, got 'many'"),
        ({"name": "x", "flag": "maybe"}, "parameter 'flag' expects true or false, got 'maybe'"),
        (
            {"name": "x", "items": "[1,"},
            "parameter 'items' expects a JSON list, got '[1,' (invalid JSON",
        ),
        ({"name": "x", "items": '{"a": 1}'}, "parameter 'items' expects a JSON list, got dict"),
        ({"name": "x", "conf": "[1]"}, "parameter 'conf' expects a JSON object, got list"),
    ],
)
def test_bad_values_are_usage_errors(given: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        pipeline_arguments(DEFS, given, from_cli=True)
    assert message in str(e.value)


def test_every_problem_is_listed_not_only_the_first() -> None:
    typed, problems = argument_problems(
        DEFS, {"bogus": "1", "rows": "many", "rate": "0.25"}, from_cli=True
    )
    assert problems == [
        "unknown parameter 'bogus' (pipeline parameters: conf, flag, items, name, rate, rows)",
        "parameter 'rows' expects an integer, got 'many'",
        "missing required parameter: name (a string); give -p name=...",
    ]
    assert typed["rate"] == 0.25 and "rows" not in typed


def test_python_values() -> None:
    out = pipeline_arguments(
        DEFS, {"name": "x", "rows": 7.0, "rate": 1, "flag": True}, from_cli=False
    )
    assert out["rows"] == 7 and isinstance(out["rows"], int)
    assert out["rate"] == 1.0 and isinstance(out["rate"], float)
    with pytest.raises(UsageError):
        pipeline_arguments(DEFS, {"name": "x", "rows": True}, from_cli=False)


def test_from_text_integer_forms() -> None:
    assert from_text("5", "NUMBER_INTEGER") == 5
    assert from_text("5.0", "NUMBER_INTEGER") == 5
    assert from_text(" 12 ", "NUMBER_INTEGER") == 12
    with pytest.raises(ParameterTypeError):
        from_text("1e400", "NUMBER_INTEGER")


@pytest.mark.parametrize(
    ("raw", "ptype", "expected"),
    [
        ("41", "NUMBER_INTEGER", 41),
        ("41.0", "NUMBER_INTEGER", 41),
        (41.0, "NUMBER_INTEGER", 41),
        ("0.5", "NUMBER_DOUBLE", 0.5),
        ("true", "BOOLEAN", True),
        ("False", "BOOLEAN", False),
        ("[1, 2]", "LIST", [1, 2]),
        ('{"a": [1]}', "STRUCT", {"a": [1]}),
        ("text\n", "STRING", "text\n"),
        ([1, 2], "LIST", [1, 2]),
    ],
)
def test_output_values(raw: object, ptype: str, expected: object) -> None:
    value = output_value(raw, ptype)
    assert value == expected and type(value) is type(expected)


def test_coerce_string_from_structures() -> None:
    assert coerce([1, 2], "STRING") == "[1, 2]"
    assert coerce(3.0, "STRING") == "3"


def test_an_error_about_huge_or_many_parameters_stays_one_short_line() -> None:
    import pytest

    from workbench_dsl.engine.params import pipeline_arguments
    from workbench_dsl.errors import UsageError

    defs = {"n": {"parameterType": "NUMBER_INTEGER"}}
    for given in (
        {"x" * 100_000: "1"},
        {f"p{i}": "1" for i in range(10_000)},
        {"n": "9" * 100_000 + "x"},
    ):
        with pytest.raises(UsageError) as e:
            pipeline_arguments(defs, given, from_cli=True)
        assert "\n" not in str(e.value) and len(str(e.value)) < 400, str(e.value)[:500]
