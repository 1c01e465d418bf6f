"""KServe 0.21 is checked with the 0.20 InferenceService schema: why that holds, as a test.

No copy of KServe v0.21.0's sources could be reached when the schemas were
vendored (the kserve/kserve snapshot ends at master aaac4e2, 2026-08-21, still
0.20.0; v0.21.0-rc0 was cut on 2026-09-08), so there is no 0.21 CRD to vendor.
What is here is KServe's 0.21.0 Python SDK, whose ``kserve.models.V1beta1*``
classes are generated from the 0.21 Go API types, the same types controller-gen
turns into the CRD. Walking them beside the vendored 0.20 schema shows that
0.21 removes or retypes none of the fields 0.20 has and only adds ones we never
emit (the strict 0.20 check refuses them). The SDK is evidence of the field
set only, never of what the webhook accepts.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import pytest

from workbench_dsl.compile.cluster.crds import SCHEMAS, check_schema, load

SCHEMA_020 = "kserve-0.20.0-inferenceservice"
#: Fields KServe 0.21's API types add to 0.20's InferenceService spec (by name).
ADDED_IN_021 = {"tracing", "schedulingGroup", "ephemeralContainers"}
_PRIMITIVE = {"str": "string", "int": "integer", "bool": "boolean", "float": "number"}

pytestmark = pytest.mark.skipif(
    not importlib.metadata.version("kserve").startswith("0.21."),
    reason="compares with the API types of the kserve 0.21 SDK",
)


def _compare(cls: Any, node: dict[str, Any], path: str, out: dict[str, list[str]]) -> None:
    import kserve.models

    props = node.get("properties") or {}
    attrs = {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}
    out["added"] += [f"{path}.{k}" for k in sorted(set(attrs) - set(props))]
    out["removed"] += [f"{path}.{k}" for k in sorted(set(props) - set(attrs))]
    for key, kind in attrs.items():
        if key not in props:
            continue
        sub, where = props[key], f"{path}.{key}"
        for pattern, container, inner in (
            (r"list\[(.+)\]$", "array", "items"),
            (r"dict\(str, (.+)\)$", "object", "additionalProperties"),
        ):
            m = re.match(pattern, kind)
            if m:
                if sub.get("type") != container:
                    out["retyped"].append(f"{where}: {kind} vs {sub.get('type')}")
                kind, sub = m.group(1), sub.get(inner) or {}
        if kind in _PRIMITIVE:
            if sub.get("type") != _PRIMITIVE[kind] and not sub.get("x-kubernetes-int-or-string"):
                out["retyped"].append(f"{where}: {kind} vs {sub.get('type')}")
        elif kind.startswith(("V1beta1", "V1alpha1")) and hasattr(kserve.models, kind):
            _compare(getattr(kserve.models, kind), sub, where, out)


def test_kserve_021_changes_no_field_of_020_and_adds_only_fields_we_never_emit() -> None:
    from kserve.models import V1beta1InferenceServiceSpec

    spec = load(SCHEMA_020)["schema"]["properties"]["spec"]
    out: dict[str, list[str]] = {"added": [], "removed": [], "retyped": []}
    _compare(V1beta1InferenceServiceSpec, spec, "spec", out)
    assert out["removed"] == [] and out["retyped"] == []
    assert out["added"] and {a.rsplit(".", 1)[1] for a in out["added"]} <= ADDED_IN_021
    # An object using one of them fails the strict 0.20 check every object passes.
    body = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "churn"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}, "tracing": {}},
    }
    assert any("tracing" in p for p in check_schema(body, SCHEMA_020))
    labels = [label for label, _ in SCHEMAS[("serving.kserve.io/v1beta1", "InferenceService")]]
    assert any("0.21" in label for label in labels)
