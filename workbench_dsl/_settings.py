"""Reading a launcher's baked-in settings strictly: the one error and the field checks every reader shares.

A decorator writes its step's settings into the compiled component as JSON;
the launcher (``runtime/``) and the backends it hands them to read them back
with ``from_json``, which refuses an unknown key or a value of the wrong type
with one line instead of guessing. This module sits in the lowest layer so
both sides use the same checks and the same :class:`SettingsError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: What every refusal ends with: the component and the code that reads it disagree.
REBUILD = "rebuild the component with the workbench-dsl version that runs it"


class SettingsError(ValueError):
    """A launcher's baked-in settings are not what this version of workbench-dsl writes."""


def problem(error: SettingsError) -> str:
    """What a refusal says is wrong, without the advice to rebuild (for settings a user gave)."""
    return str(error).removesuffix(f"; {REBUILD}")


def fail(what: str, key: str, expected: str, value: Any) -> SettingsError:
    """``<what>: <key> must be <expected> (got <value>); rebuild ...``."""
    return SettingsError(f"{what}: {key} must be {expected} (got {value!r}); {REBUILD}")


def known(what: str, data: Any, keys: Iterable[str]) -> dict[str, Any]:
    """``data`` as a dict whose keys are all in ``keys``; anything else is refused."""
    if not isinstance(data, dict):
        raise fail(what, "the settings", "an object", data)
    unknown = sorted(set(map(str, data)) - set(keys))
    if unknown:
        raise SettingsError(f"{what}: unknown field(s) {', '.join(unknown)}; {REBUILD}")
    return data


def count(what: str, key: str, value: Any, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(what, key, f"a whole number >= {minimum}", value)
    return value


def opt_count(what: str, key: str, value: Any, minimum: int = 0) -> int | None:
    """A whole number >= ``minimum`` or null."""
    return None if value is None else count(what, key, value, minimum)


def number(what: str, key: str, value: Any) -> int | float:
    """An int or a float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(what, key, "a number", value)
    return value


def text(what: str, key: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise fail(what, key, "a non-empty string", value)
    return value


def opt_str(what: str, key: str, value: Any) -> str | None:
    """A string or null."""
    if value is not None and not isinstance(value, str):
        raise fail(what, key, "a string or null", value)
    return value


def one_of(what: str, key: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise fail(what, key, "one of " + ", ".join(options), value)
    return str(value)


def str_map(what: str, key: str, value: Any) -> dict[str, str]:
    """An object of strings (null: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise fail(what, key, "an object of strings", value)
    return dict(value)


def str_list(what: str, key: str, value: Any) -> tuple[str, ...]:
    """A list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(what, key, "a list of strings", value)
    return tuple(value)
