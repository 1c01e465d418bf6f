"""The vendored schemas of the objects we create on a cluster, by apiVersion and kind, per supported version.

The files under ``schemas/`` carry their source (repo, path, tag, commit,
licence) inside them; ``tests/compile/cluster/vendor_schemas.py`` rewrites them
from upstream. KServe 0.21 is checked with the 0.20 schema: no source of
v0.21.0 was in reach when they were vendored (the kserve/kserve snapshot ends at
master aaac4e2, 2026-08-21, whose InferenceService schema is 0.20.0's). KServe's
0.21.0 SDK, generated from the 0.21 Go API types, removes or retypes none of
0.20's fields and adds only ``spec.tracing``, ``schedulingGroup`` and
``ephemeralContainers``, which we never emit
(``tests/compile/cluster/test_kserve_021.py``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from workbench_dsl.compile.cluster.openapi import validate

#: (apiVersion, kind) -> (label, schema file) for each supported version.
SCHEMAS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("serving.kserve.io/v1beta1", "InferenceService"): (
        ("KServe 0.17", "kserve-0.17.0-inferenceservice"),
        ("KServe 0.20-0.21", "kserve-0.20.0-inferenceservice"),
    ),
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): (
        ("Trainer 2.2", "trainer-2.2.0-trainjob"),
        ("Trainer 2.3", "trainer-2.3.0-trainjob"),
    ),
    ("kubeflow.org/v1beta1", "Experiment"): (("Katib 0.19", "katib-0.19.0-experiment"),),
    ("batch/v1", "Job"): (("Kubernetes batch/v1", "batch-v1-job"),),
}


@cache
def load(name: str) -> dict[str, Any]:
    """One vendored schema file (``{"source": ..., "schema": ..., ...}``)."""
    text = resources.files(__package__).joinpath("schemas", f"{name}.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
#: The part of ObjectMeta a client may set on create (a CRD's schema says only
#: ``metadata: {type: object}``: the API server checks it as ObjectMeta).
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63},
        "labels": _STRINGS,
        "annotations": _STRINGS,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["apiVersion", "kind", "name", "uid"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "uid": {"type": "string"},
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
    },
}


def _meta_problems(meta: Any) -> list[str]:
    problems = validate(meta, OBJECT_META, path="metadata")
    if not isinstance(meta, dict):
        return problems
    for key, value in (meta.get("labels") or {}).items():
        if not _QUALIFIED.match(str(key)) or len(str(key).rsplit("/", 1)[-1]) > 63:
            problems.append(f"metadata.labels: {key!r} is not a valid label key")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"metadata.labels[{key!r}]: {value!r} is not a valid label value")
    for key in meta.get("annotations") or {}:
        if not _QUALIFIED.match(str(key)):
            problems.append(f"metadata.annotations: {key!r} is not a valid annotation key")
    return problems


def check_schema(obj: dict[str, Any], name: str) -> list[str]:
    """Problems of ``obj`` against one vendored schema file (strict field validation)."""
    doc = load(name)
    schema = doc["schema"]
    root_meta = (schema.get("properties") or {}).get("metadata")
    if root_meta is not None and set(root_meta) <= {"type"}:
        # Checked as ObjectMeta, the way the API server does for every resource.
        body = {k: v for k, v in obj.items() if k != "metadata"}
        return _meta_problems(obj.get("metadata")) + validate(body, schema, document=doc)
    return validate(obj, schema, document=doc)


def check_object(obj: dict[str, Any]) -> list[str]:
    """Problems of ``obj`` against every supported version of its kind, each line labelled."""
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    versions = SCHEMAS.get(key)
    if versions is None:
        return [f"no schema for {key[0]} {key[1]}: it is not an object workbench creates"]
    problems: list[str] = []
    for label, name in versions:
        problems += [f"{p} ({label})" for p in check_schema(obj, name)]
    return problems
