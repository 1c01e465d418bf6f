"""A strict validator of Kubernetes objects against an ``openAPIV3Schema``, as the API server applies it.

It follows the structural-schema rules of CustomResourceDefinitions
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema)
with ``fieldValidation=Strict``: a field the schema does not name is an error
(not silently pruned), types are exact (``1`` is not a string, ``True`` is not
an integer), and the ``x-kubernetes-*`` extensions mean what they mean there:

* ``x-kubernetes-preserve-unknown-fields``: unknown fields are kept (known ones still checked);
* ``x-kubernetes-int-or-string`` (and ``format: int-or-string``): an int or a string;
* ``x-kubernetes-embedded-resource``: an object with ``apiVersion``, ``kind`` and ``metadata``;
* ``x-kubernetes-list-type``: ``set`` items are unique, ``map`` items unique by
  ``x-kubernetes-list-map-keys``.

``x-kubernetes-validations`` (CEL) are not evaluated here: the rules that matter
to the objects we build are ported by hand beside this module, each citing its
upstream file. ``$ref``/``allOf``/``oneOf`` are followed for OpenAPI documents
generated from Go types (Katib's), whose unknown fields the decoder drops.
A ``null`` is accepted wherever a field may be absent (the API server prunes it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class _Validator:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.components = (document.get("components") or {}).get("schemas") or {}
        self.problems: list[str] = []

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            schema = self.components[str(schema["$ref"]).rsplit("/", 1)[-1]]
        return schema

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '<root>'}: {message}")

    def check(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        schema = self.resolve(schema)
        for part in schema.get("allOf") or ():
            self.check(value, part, path)
        if value is None:
            return
        if schema.get("x-kubernetes-int-or-string") or schema.get("format") == "int-or-string":
            if isinstance(value, bool) or not isinstance(value, int | str):
                self.fail(path, f"must be an integer or a string (got {_kind(value)})")
            return
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if options and not any(self._passes(value, o, path) for o in options):
                self.fail(path, f"matches none of the allowed shapes (got {_kind(value)})")
                return
        kind = schema.get("type")
        if kind == "object" or (kind is None and "properties" in schema):
            self._object(value, schema, path)
        elif kind == "array":
            self._array(value, schema, path)
        elif kind == "string":
            self._string(value, schema, path)
        elif kind == "integer":
            self._integer(value, schema, path)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(path, f"must be a number (got {_kind(value)})")
            else:
                self._bounds(value, schema, path)
        elif kind == "boolean" and not isinstance(value, bool):
            self.fail(path, f"must be true or false (got {_kind(value)})")
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(map(repr, schema["enum"]))
            self.fail(path, f"{value!r} is not one of {allowed}")

    def _passes(self, value: Any, schema: Mapping[str, Any], path: str) -> bool:
        probe = _Validator({})
        probe.components = self.components
        probe.check(value, schema, path)
        return not probe.problems

    def _object(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"must be an object (got {_kind(value)})")
            return
        props: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        if embedded:
            props = {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                **props,
            }
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    self.fail(_join(path, key), "an embedded resource needs it")
        for key in schema.get("required") or ():
            if value.get(key) is None:
                self.fail(_join(path, key), "required")
        for key, item in value.items():
            here = _join(path, key)
            if key in props:
                self.check(item, props[key], here)
            elif isinstance(extra, Mapping):
                self.check(item, extra, here)
            elif extra is True or preserve:
                continue
            else:
                self.fail(here, "unknown field")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.fail(path, f"must have at most {schema['maxProperties']} entries")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.fail(path, f"must have at least {schema['minProperties']} entries")

    def _array(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        if not isinstance(value, list):
            self.fail(path, f"must be a list (got {_kind(value)})")
            return
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                self.check(item, items, f"{path}[{i}]")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.fail(path, f"must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.fail(path, f"must have at least {schema['minItems']} items")
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set" and len({repr(v) for v in value}) != len(value):
            self.fail(path, "items of a set must be unique")
        if list_type == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or ()
            seen = [tuple(v.get(k) for k in keys) for v in value if isinstance(v, dict)]
            if len(set(seen)) != len(seen):
                self.fail(path, f"items must be unique by {', '.join(keys)}")

    def _string(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, f"must be a string (got {_kind(value)})")
            return
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.fail(path, f"must be at most {schema['maxLength']} characters")
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.fail(path, f"must be at least {schema['minLength']} characters")
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            self.fail(path, f"{value!r} does not match {pattern}")

    def _integer(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer (got {_kind(value)})")
            return
        low, high = _INT32 if schema.get("format") == "int32" else _INT64
        if not low <= value <= high:
            self.fail(path, f"{value} is out of range for {schema.get('format', 'int64')}")
        self._bounds(value, schema, path)

    def _bounds(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") is True and value == low):
                self.fail(path, f"must be at least {low} (got {value})")
        if "maximum" in schema:
            high = schema["maximum"]
            if value > high or (schema.get("exclusiveMaximum") is True and value == high):
                self.fail(path, f"must be at most {high} (got {value})")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}.get(
        type(value), "object" if isinstance(value, dict) else type(value).__name__
    )


def validate(
    value: Any,
    schema: Mapping[str, Any],
    *,
    document: Mapping[str, Any] | None = None,
    path: str = "",
) -> list[str]:
    """Every way ``value`` breaks ``schema`` (``document`` holds the ``$ref`` targets).

    Returns:
        One line per problem, ``<field path>: <what is wrong>``; empty when valid.
    """
    v = _Validator(document or {})
    v.check(value, schema, path)
    return v.problems
