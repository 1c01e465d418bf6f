"""Validate OpenLineage events against the spec's JSON schemas (vendored in spec/) and ours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

HERE = Path(__file__).parent
OURS = Path(__file__).resolve().parents[3] / "workbench_dsl" / "backends" / "lineage" / "schemas"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _registry() -> Registry:
    resources = []
    for path in [*sorted((HERE / "spec").glob("*.json")), *sorted(OURS.glob("*.json"))]:
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def _check(instance: Any, ref: str) -> None:
    validator = jsonschema.Draft202012Validator(
        {"$ref": ref},
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(instance)


def _facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = list((event["run"].get("facets") or {}).items())
    out += list((event["job"].get("facets") or {}).items())
    for ds in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
        for key in ("facets", "inputFacets", "outputFacets"):
            out += list((ds.get(key) or {}).items())
    return out


def validate_event(event: dict[str, Any]) -> list[str]:
    """Validate a RunEvent and each facet against the schema its ``_schemaURL`` names.

    Returns the facet keys checked (so tests can assert which facets were present).
    """
    _check(event, RUN_EVENT)
    checked = []
    for key, facet in _facets(event):
        url = facet["_schemaURL"]
        assert url.startswith(
            ("https://openlineage.io/spec/", "https://raw.githubusercontent.com/workbench-dsl/")
        ), url
        _check(facet, url)
        checked.append(key)
    return checked
