"""The CEL subset of `triggerPolicy.condition`, as KFP's compiler writes it."""

from __future__ import annotations

import pytest

from workbench_dsl.engine.conditions import ConditionError, evaluate, parameters_used, parse

P = "inputs.parameter_values"


@pytest.mark.parametrize(
    ("cond", "values", "expected"),
    [
        (f"{P}['pipelinechannel--pick'] == true", {"pipelinechannel--pick": True}, True),
        (f"!({P}['pipelinechannel--pick'] == true)", {"pipelinechannel--pick": True}, False),
        (f"int({P}['n']) > 5", {"n": "7"}, True),
        (f"int({P}['n']) > 5", {"n": 5.0}, False),
        (f"int({P}['n']) <= 5", {"n": 5}, True),
        (f"int({P}['n']) >= int({P}['t'])", {"n": 3, "t": "3"}, True),
        (f"{P}['coin'] == 'heads'", {"coin": "heads"}, True),
        (f"{P}['coin'] != 'heads'", {"coin": "tails"}, True),
        (f"{P}['a'] == {P}['b']", {"a": "x", "b": "x"}, True),
        (f"{P}['item'] == '1'", {"item": 1}, True),  # a loop item against a string literal
        (f"double({P}['x']) < 0.5", {"x": "0.25"}, True),
        (f"{P}['x'] == -1", {"x": -1}, True),
        (f"{P}['x'] == 2.0", {"x": 2}, True),
        (
            f"!(int({P}['n']) < 5000) && int({P}['n']) > 5000",
            {"n": 6000},
            True,
        ),
        (
            f"!(int({P}['n']) < 5000) && !(int({P}['n']) > 5000)",
            {"n": 5000},
            True,
        ),
        (f"{P}['a'] == 'x' || {P}['b'] == 'y'", {"a": "no", "b": "y"}, True),
        (
            f"({P}['a'] == 'x' || {P}['b'] == 'y') && {P}['c'] == true",
            {"a": "x", "b": "", "c": False},
            False,
        ),
        (f'{P}["dq"] == "it\'s"', {"dq": "it's"}, True),
        (f"{P}['s'] == 'a\\'b'", {"s": "a'b"}, True),
        (f"{P}['z'] == null", {"z": None}, True),
    ],
)
def test_evaluates(cond: str, values: dict, expected: bool) -> None:
    assert evaluate(cond, values) is expected


def test_short_circuit_does_not_read_missing_values() -> None:
    assert evaluate(f"{P}['a'] == 1 || {P}['missing'] == 2", {"a": 1}) is True


@pytest.mark.parametrize(
    ("cond", "values", "message"),
    [
        (f"{P}['x'] ==", {"x": 1}, "end of condition"),
        (f"{P}['x'] = 1", {"x": 1}, "unexpected character '='"),
        ("inputs.artifacts['x'] == 1", {}, "only inputs.parameter_values"),
        (f"{P}['missing'] == 1", {}, "'missing', which has no value"),
        (f"int({P}['x']) > 1", {"x": "abc"}, "int('abc') is not possible"),
        (f"{P}['x']", {"x": 3}, "gives 3, not true or false"),
        (f"{P}['x'] < 'a'", {"x": True}, "cannot compare"),
        ("__import__('os')", {}, "unexpected '__import__'"),
    ],
)
def test_errors_are_one_clear_line(cond: str, values: dict, message: str) -> None:
    with pytest.raises(ConditionError) as e:
        evaluate(cond, values)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_parameters_used() -> None:
    assert parameters_used(f"int({P}['a']) > int({P}['b']) && {P}['a'] == 1") == {"a", "b"}


def test_parse_is_a_tree_not_eval() -> None:
    assert parse("1 == 1") == ("cmp", "==", ("lit", 1), ("lit", 1))
