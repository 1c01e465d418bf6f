"""Search spaces are checked where they are written, with errors worded like Python's."""

from __future__ import annotations

import pytest

from workbench_dsl import space
from workbench_dsl.errors import PipelineDefinitionError


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: space.uniform(1.0, 0.0),
            "space.uniform(1.0, 0.0): empty range, low must be less than high",
        ),
        (
            lambda: space.uniform(0.0, 0.0),
            "space.uniform(0.0, 0.0): empty range, low must be less than high",
        ),
        (
            lambda: space.uniform("0", 1),
            "space.uniform('0', 1): low must be a number (got str '0')",
        ),
        (
            lambda: space.uniform(0, float("inf")),
            "space.uniform(0, inf): high must be finite (got inf)",
        ),
        (
            lambda: space.uniform(0, 1, step=2),
            "space.uniform(0, 1): step must be positive and at most high - low (got 2)",
        ),
        (
            lambda: space.loguniform(0.0, 1.0),
            "space.loguniform(0.0, 1.0): low must be positive, the log of a non-positive bound is undefined",
        ),
        (
            lambda: space.loguniform(-1e-3, 1.0),
            "space.loguniform(-0.001, 1.0): low must be positive, the log of a non-positive bound is undefined",
        ),
        (
            lambda: space.loguniform(0.1, 0.01),
            "space.loguniform(0.1, 0.01): empty range, low must be less than high",
        ),
        (
            lambda: space.integer(2, 2),
            "space.integer(2, 2): empty range, low must be less than high",
        ),
        (
            lambda: space.integer(1.5, 3),
            "space.integer(1.5, 3): low must be a whole number (got float 1.5)",
        ),
        (
            lambda: space.integer(True, 3),
            "space.integer(True, 3): low must be a whole number (got bool True)",
        ),
        (
            lambda: space.integer(1, 9, step=0),
            "space.integer(1, 9): step must be 1 or more (got 0)",
        ),
        (
            lambda: space.integer(0, 9, log=True),
            "space.integer(0, 9): with log=True low must be 1 or more, the log of a non-positive bound is undefined",
        ),
        (
            lambda: space.integer(1, 9, step=2, log=True),
            "space.integer(1, 9): log=True cannot be combined with step",
        ),
        (
            lambda: space.categorical([]),
            "space.categorical([]): values is empty; give at least one value",
        ),
        (
            lambda: space.categorical("adam"),
            "space.categorical('adam'): values must be a list (got str 'adam')",
        ),
        (
            lambda: space.categorical([[1], [2]]),
            "space.categorical([[1], [2]]): values must be strings, numbers or booleans (got list)",
        ),
        (
            lambda: space.categorical(["a", "a"]),
            "space.categorical(['a', 'a']): duplicate value 'a'",
        ),
        (lambda: space.grid([1, "1"]), "space.grid([1, '1']): duplicate value '1' (and 1)"),
        (lambda: space.grid([float("nan")]), "space.grid([nan]): values must be finite (got nan)"),
    ],
)
def test_invalid_spaces_say_what_is_wrong(make: object, message: str) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        make()  # type: ignore[operator]
    assert str(info.value) == message


def test_valid_spaces_and_their_json() -> None:
    assert space.uniform(0, 1).to_spec() == {
        "type": "uniform",
        "low": 0.0,
        "high": 1.0,
        "step": None,
    }
    assert space.loguniform(1e-4, 1e-1).to_spec() == {
        "type": "loguniform",
        "low": 1e-4,
        "high": 0.1,
    }
    assert space.integer(2, 8, step=2).to_spec() == {
        "type": "integer",
        "low": 2,
        "high": 8,
        "step": 2,
        "log": False,
    }
    assert space.categorical(("adam", "sgd")).to_spec() == {
        "type": "categorical",
        "values": ["adam", "sgd"],
    }
    assert space.grid([1, 2.5, True, None]).values == (1, 2.5, True, None)


def test_grid_values_of_each_domain() -> None:
    assert space.uniform(0, 1, step=0.25).grid_values() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert space.uniform(0, 1).grid_values() is None
    assert space.loguniform(0.1, 1).grid_values() is None
    assert space.integer(1, 7, step=3).grid_values() == [1, 4, 7]
    assert space.grid(["a", "b"]).grid_values() == ["a", "b"]
