"""Parameter values typed by KFP's ``ParameterType``: from ``-p`` strings, defaults and outputs.

KFP carries every parameter as a protobuf ``Value``, so an integer default is
written ``5.0`` and a container component's output comes back as the text of
its output file. The component still expects an ``int``, a ``list``, a
``bool``; this module gives it one, and says in one line what is wrong when a
value does not fit.
"""

from __future__ import annotations

import json
import math
from typing import Any

from workbench_dsl.errors import UsageError

INTEGER = "NUMBER_INTEGER"
DOUBLE = "NUMBER_DOUBLE"
STRING = "STRING"
BOOLEAN = "BOOLEAN"
LIST = "LIST"
STRUCT = "STRUCT"
TASK_FINAL_STATUS = "TASK_FINAL_STATUS"

_WORDS = {
    INTEGER: "an integer",
    DOUBLE: "a number",
    STRING: "a string",
    BOOLEAN: "true or false",
    LIST: "a JSON list",
    STRUCT: "a JSON object",
}

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class ParameterTypeError(ValueError):
    """A value that does not fit its declared parameter type."""


# Deeper JSON than any real parameter; KFP's protobuf ``Value`` parsing stops at 100
# nested messages, and Python's JSON codec raises RecursionError near 1,000.
MAX_VALUE_DEPTH = 100


def loads(text: str, around: int = 0) -> Any:
    """``json.loads`` that refuses values nested deeper than :data:`MAX_VALUE_DEPTH`
    (plus ``around``: the levels of a document that holds values, not a value).

    Raises:
        ValueError: not JSON (``json.JSONDecodeError``), or nested too deeply.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested more than {MAX_VALUE_DEPTH} levels deep") from None
    if nesting(value, MAX_VALUE_DEPTH + around) > MAX_VALUE_DEPTH + around:
        raise ValueError(f"JSON nested more than {MAX_VALUE_DEPTH} levels deep")
    return value


def nesting(value: Any, stop: int = MAX_VALUE_DEPTH) -> int:
    """How deep lists and dicts nest in ``value`` (0 for a scalar), counted up to past ``stop``."""
    worst = 0
    todo = [(value, 1)] if isinstance(value, (dict, list)) else []
    while todo:
        item, depth = todo.pop()
        worst = max(worst, depth)
        if worst > stop:
            return worst
        kids = item.values() if isinstance(item, dict) else item
        todo.extend((k, depth + 1) for k in kids if isinstance(k, (dict, list)))
    return worst


def shown(text: Any, limit: int = 80) -> str:
    """``repr`` of a value for an error line, cut to about ``limit`` characters."""
    r = repr(text)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(r):,} characters)"


def describe(ptype: str) -> str:
    return _WORDS.get(ptype, ptype.lower())


def from_text(text: str, ptype: str) -> Any:
    """Parse a ``-p NAME=VALUE`` string as a value of ``ptype``."""
    if ptype == STRING:
        return text
    s = text.strip()
    if ptype == INTEGER:
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(text)}") from None
            return _int_of_float(f, text)
    if ptype == DOUBLE:
        try:
            return float(s)
        except ValueError:
            raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(text)}") from None
    if ptype == BOOLEAN:
        low = s.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(text)}")
    if ptype in (LIST, STRUCT):
        try:
            value = loads(s)
        except ValueError as e:
            why = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            raise ParameterTypeError(
                f"expects {describe(ptype)}, got {shown(text)} (invalid JSON: {why})"
            ) from None
        return coerce(value, ptype)
    raise ParameterTypeError(f"cannot be set (type {ptype})")


def as_delivered(value: Any) -> Any:
    """``value`` as a cluster's driver hands it to a component.

    The driver writes the ExecutorInput with Go's protojson, which prints a whole
    double below 1e21 without a fraction (kubeflow/pipelines backend/src/v2/driver,
    ``protojson.Marshal(executorInput)``), so ``[1.0, 'a']`` arrives as ``[1, 'a']``.
    """
    if isinstance(value, float):
        return (
            int(value)
            if math.isfinite(value) and value.is_integer() and abs(value) < 1e21
            else value
        )
    if isinstance(value, list):
        return [as_delivered(v) for v in value]
    if isinstance(value, dict):
        return {k: as_delivered(v) for k, v in value.items()}
    return value


def _int_of_float(f: float, given: Any) -> int:
    if math.isfinite(f) and f == int(f):
        return int(f)
    raise ParameterTypeError(f"expects {describe(INTEGER)}, got {shown(given)}")


def coerce(value: Any, ptype: str | None) -> Any:
    """``value`` as the Python type a component with ``ptype`` expects.

    Accepts what KFP itself produces for that type (``5.0`` for an integer, the
    text ``"true"`` for a boolean from a container's output file, JSON text for
    a list) and raises :class:`ParameterTypeError` for anything else.
    """
    if value is None or ptype is None:
        return value
    if ptype == STRING:
        if isinstance(value, str):
            return value
        # A list or dict flowing into a string input: KFP passes its JSON text.
        if isinstance(value, (list, dict, bool)):
            return json.dumps(value)
        if isinstance(value, float) and value == int(value):
            return str(int(value))
        return str(value)
    if ptype == INTEGER:
        if isinstance(value, bool):
            raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return _int_of_float(value, value)
        if isinstance(value, str):
            return from_text(value, ptype)
        raise ParameterTypeError(f"expects {describe(ptype)}, got {type(value).__name__}")
    if ptype == DOUBLE:
        if isinstance(value, bool):
            raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(value)}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return from_text(value, ptype)
        raise ParameterTypeError(f"expects {describe(ptype)}, got {type(value).__name__}")
    if ptype == BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return from_text(value, ptype)
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(value)}")
    if ptype == LIST:
        if isinstance(value, str):
            return from_text(value, ptype)
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ParameterTypeError(f"expects {describe(ptype)}, got {type(value).__name__}")
    if ptype == STRUCT:
        if isinstance(value, str):
            return from_text(value, ptype)
        if isinstance(value, dict):
            return value
        raise ParameterTypeError(f"expects {describe(ptype)}, got {type(value).__name__}")
    return value


def default_of(definition: dict[str, Any]) -> tuple[bool, Any]:
    """``(has_default, value)`` of an input definition, typed (``5.0`` -> ``5``)."""
    if "defaultValue" not in definition:
        return False, None
    ptype = definition.get("parameterType")
    try:
        return True, coerce(definition["defaultValue"], ptype)
    except ParameterTypeError:
        return True, definition["defaultValue"]


def is_optional(definition: dict[str, Any]) -> bool:
    return bool(definition.get("isOptional")) or "defaultValue" in definition


def pipeline_arguments(
    definitions: dict[str, Any], given: dict[str, Any], *, from_cli: bool
) -> dict[str, Any]:
    """Type the run's parameters by the pipeline's inputs; apply defaults; check names.

    Args:
        definitions: ``root.inputDefinitions.parameters``.
        given: Values by name: raw strings from ``-p`` (``from_cli``) or Python values.
        from_cli: Parse strings as ``-p`` values (JSON for lists and dicts).

    Raises:
        UsageError: an unknown or missing parameter, or a value of the wrong type (the
            first problem; :func:`argument_problems` gives all of them).
    """
    out, problems = argument_problems(definitions, given, from_cli=from_cli)
    if problems:
        raise UsageError(problems[0])
    return out


def argument_problems(
    definitions: dict[str, Any], given: dict[str, Any], *, from_cli: bool
) -> tuple[dict[str, Any], list[str]]:
    """The typed parameters that are fine, and one line for every one that is not.

    The preflight lists every problem of a run at once, so an unknown name does not
    hide a missing one.
    """
    problems = []
    unknown = sorted(set(given) - set(definitions))
    if unknown:
        known = ", ".join(sorted(definitions)) or "none"
        what = "parameter" if len(unknown) == 1 else "parameters"
        names = ", ".join(shown(u, 60) for u in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        problems.append(f"unknown {what} {names}{more} (pipeline parameters: {known})")
    out: dict[str, Any] = {}
    missing: list[str] = []
    for name, definition in definitions.items():
        ptype = str(definition.get("parameterType", STRING))
        if name in given:
            value = given[name]
            try:
                if from_cli and isinstance(value, str):
                    out[name] = from_text(value, ptype)
                else:
                    out[name] = coerce(value, ptype)
            except ParameterTypeError as e:
                problems.append(f"parameter {name!r} {e}")
            continue
        has_default, default = default_of(definition)
        if has_default:
            out[name] = default
        elif not definition.get("isOptional"):
            missing.append(name)
    if missing:
        what = "parameter" if len(missing) == 1 else "parameters"
        kinds = ", ".join(
            f"{n} ({describe(str(definitions[n].get('parameterType', STRING)))})" for n in missing
        )
        give = " ".join(f"-p {n}=..." for n in missing)
        problems.append(f"missing required {what}: {kinds}; give {give}")
    return out, problems


def output_value(raw: Any, ptype: str | None) -> Any:
    """An output parameter as its declared type (container outputs arrive as file text)."""
    if ptype == STRING or ptype is None:
        if isinstance(raw, str) or raw is None:
            return raw
        return coerce(raw, STRING)
    if isinstance(raw, str) and ptype in (LIST, STRUCT):
        try:
            return coerce(loads(raw), ptype)
        except ValueError:
            raise ParameterTypeError(f"expects {describe(ptype)}, got {shown(raw)}") from None
    return coerce(raw, ptype)
