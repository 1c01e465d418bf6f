"""Which data a model was trained on, carried from the training step to its registered version.

Locally the drift report finds a model's training data by walking the lineage file; on a
cluster there is no such file, so the link travels with the model itself, the same way
for every step that writes one:

1. a ``@train`` or ``@sweep`` launcher, once the function has written its ``Output[Model]``,
   records the step's ``Input[Dataset]`` artifacts in the model artifact's metadata under
   ``workbench.training_data`` (input name, URI and the dataset's own ``features`` /
   ``label`` / ``format`` metadata); KFP and the local engine hand artifact metadata to the
   steps downstream;
2. the ``@register`` step picks the training set among them as the lineage walk does: the
   datasets it does not read itself (the others are its held-out data), first by input
   name, and tags the model version ``workbench.training_data`` (the URI), with
   ``workbench.training_data.features``, ``.label`` and ``.format`` when the dataset said.

A model written by a step that is not a launcher (a ``@develop`` step) carries no such
metadata unless the step sets it (``model.metadata["workbench.training_data"] = data.uri``);
without it the version gets no tag, and the cluster's ``drift:`` check says so.

Why metadata rather than an edge the DSL adds at compile time (the register task given the
training step's dataset as one more input): KFP's launcher downloads every input artifact
into the pod before the step starts (kubeflow/pipelines backend/src/v2/component/
launcher_v2.go, ``execute``), so the register pod would fetch the whole training set only
to learn its URI; metadata costs nothing and works the same locally and on KFP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from workbench_dsl.backends.drift.cluster import TRAINING_DATA_TAG

#: The model artifact's metadata key and the model version's tag (the cluster's drift check
#: reads it).
KEY = TRAINING_DATA_TAG
#: Dataset metadata that tells the drift check how to read the table and which columns are
#: features (``backends/drift/reference.py``: ``feature_columns``).
DATASET_KEYS = ("features", "columns", "label", "target", "format")
#: MLflow refuses model version tag values longer than this (``MAX_TAG_VAL_LENGTH``).
MAX_TAG_VALUE = 5000


def _is(value: Any, schema_title: str) -> bool:
    return getattr(value, "schema_title", None) == schema_title and hasattr(value, "uri")


def stamp_models(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Record the step's input datasets on each of its output models (steps 1 above)."""
    from workbench_dsl.runtime._invocation import output_names

    outputs = output_names(fn)
    datasets = [
        {
            "input": name,
            "uri": str(value.uri),
            **{k: value.metadata[k] for k in DATASET_KEYS if k in (value.metadata or {})},
        }
        for name, value in sorted(kwargs.items())
        if name not in outputs and _is(value, "system.Dataset")
    ]
    if not datasets:
        return
    for name in sorted(outputs):
        model = kwargs.get(name)
        if model is not None and _is(model, "system.Model"):
            model.metadata[KEY] = datasets


def version_tags(model: Any, inputs: Mapping[str, Any]) -> dict[str, str]:
    """The registered version's ``workbench.training_data*`` tags (empty when unknown)."""
    listed = (getattr(model, "metadata", None) or {}).get(KEY)
    if isinstance(listed, str) and listed:
        # Set by hand in a step that is not a launcher: data.uri of the training set.
        return {KEY: listed}
    if not isinstance(listed, list):
        return {}
    found = [d for d in listed if isinstance(d, dict) and isinstance(d.get("uri"), str)]
    held_out = {str(v.uri) for v in inputs.values() if v is not model and _is(v, "system.Dataset")}
    pool = [d for d in found if d["uri"] not in held_out] or found
    if not pool:
        return {}
    chosen = sorted(pool, key=lambda d: str(d.get("input", "")))[0]
    tags = {KEY: chosen["uri"]}
    for key in ("features", "columns", "label", "target", "format"):
        if chosen.get(key) is None:
            continue
        value = chosen[key]
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text) <= MAX_TAG_VALUE:
            tags[f"{KEY}.{key}"] = text
    return tags
