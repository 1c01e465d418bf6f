"""The data a serving revision's model was trained on, found through lineage, never given by hand.

The chain, as the OpenLineage events file records it (docs/lineage.md)::

    endpoint:NAME @ revision  <- deploy step <- models:/MODEL @ N  <- register step
        <- model artifact (system.Model) <- the step that wrote it (train)
        <- the dataset(s) that step read (system.Dataset)

The endpoint's own record names the revision's model version (``models:/MODEL/N``), so a
revision deployed outside a pipeline run still finds its model in the lineage. When the
training step read several datasets, the one the register step did not also read is the
training data (the other is the held-out part); a tie goes to the first by name, and the
report says so. Each missing link is an error that names it.

Which columns are features: the dataset's artifact metadata may say so (``features`` or
``columns``: the list; ``label`` or ``target``: the column to leave out); otherwise every
column but one named ``label``, ``target``, ``y`` or ``class`` when the logged rows are one
value shorter than the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench_dsl.paths import LocalRoot

LABEL_NAMES = ("label", "target", "y", "class", "labels")


class ReferenceNotFound(Exception):
    """No reference dataset: the message names the missing link and what to do."""


@dataclass(frozen=True)
class Reference:
    """The training dataset of one revision, and how it was found."""

    endpoint: str
    revision: str
    model_uri: str
    dataset: str  # its lineage name, e.g. churn/load/data
    version: str | None  # its content digest
    uri: str
    format: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "uri": self.uri,
            "model_uri": self.model_uri,
            "chain": self.chain,
            "note": self.note,
        }


def find_reference(root: LocalRoot, endpoint: str, revision: str, model_uri: str) -> Reference:
    """The training dataset of ``revision`` of ``endpoint`` (which serves ``model_uri``)."""
    from workbench_dsl.backends.lineage.graph import LineageGraph, Node

    events = root.lineage_events
    if not events.is_file():
        raise ReferenceNotFound(
            f"no lineage recorded ({events} is missing): the training data of {endpoint} is "
            f"found through lineage; deploy it from a pipeline run with lineage on"
        )
    g = LineageGraph.load(events)
    chain = [f"endpoint:{endpoint}@{revision}"]
    mv: Node | None = None
    ep = [
        n
        for n in g.nodes.values()
        if n.kind == "endpoint" and n.name == f"endpoint:{endpoint}" and n.version == revision
    ]
    if ep:
        for task in g.up.get(ep[-1].id, ()):
            for up in g.up.get(task, ()):
                if g.nodes[up].kind == "model_version":
                    mv = g.nodes[up]
    if mv is None:
        if not model_uri.startswith("models:/"):
            raise ReferenceNotFound(
                f"endpoint {endpoint} revision {revision} serves {model_uri}, not a registered "
                f"model version: missing link endpoint <- model version; deploy a models:/ URI"
            )
        name, _, number = model_uri.rpartition("/")
        found = [
            n
            for n in g.nodes.values()
            if n.kind == "model_version" and n.name == name and n.version == number
        ]
        if not found:
            raise ReferenceNotFound(
                f"lineage has no record of {model_uri} (served by {endpoint} revision "
                f"{revision}): missing link model version <- register step; register it "
                f"from a pipeline run with lineage on"
            )
        mv = found[-1]
    mv_label = f"{mv.name}/{mv.version}"
    chain.append(mv_label)
    registers = sorted(g.up.get(mv.id, ()), key=lambda t: g.nodes[t].time)
    if not registers:
        raise ReferenceNotFound(
            f"lineage has no step that registered {mv_label}: missing link model version <- "
            f"register step"
        )
    register = registers[-1]
    chain.append(g.nodes[register].name)
    read_by_register = g.up.get(register, set())
    models = sorted(
        (d for d in read_by_register if "Model" in str(g.nodes[d].data.get("type", ""))),
        key=lambda d: g.nodes[d].name,
    )
    if not models:
        raise ReferenceNotFound(
            f"the register step {g.nodes[register].name} of {mv_label} read no model "
            f"artifact: missing link model version <- model artifact"
        )
    model = models[0]
    chain.append(g.nodes[model].name)
    trainers = sorted(g.up.get(model, ()), key=lambda t: g.nodes[t].time)
    if not trainers:
        raise ReferenceNotFound(
            f"lineage has no step that wrote the model {g.nodes[model].name}: missing link "
            f"model artifact <- training step"
        )
    # A cache hit re-records the same inputs: any run of the step names them.
    datasets: set[str] = set()
    for t in trainers:
        datasets |= {
            d
            for d in g.up.get(t, ())
            if g.nodes[d].kind == "dataset" and "Model" not in str(g.nodes[d].data.get("type"))
        }
    chain.append(g.nodes[trainers[-1]].name)
    if not datasets:
        raise ReferenceNotFound(
            f"the training step {g.nodes[trainers[-1]].name} read no dataset: missing link "
            f"training step <- dataset"
        )
    train_only = sorted(
        (d for d in datasets if d not in read_by_register), key=lambda d: g.nodes[d].name
    )
    pool = train_only or sorted(datasets, key=lambda d: g.nodes[d].name)
    chosen = g.nodes[pool[0]]
    note = (
        f"the training step read {len(pool)} datasets; using {chosen.name}"
        if len(pool) > 1
        else None
    )
    chain.append(f"{chosen.name}@{(chosen.version or '')[:19]}")
    uri = str(chosen.data.get("uri") or "")
    if not uri:
        raise ReferenceNotFound(f"lineage names the training dataset {chosen.name} but no URI")
    return Reference(
        endpoint=endpoint,
        revision=revision,
        model_uri=f"{mv.name}/{mv.version}",
        dataset=chosen.name,
        version=chosen.version,
        uri=uri,
        format=chosen.data.get("format"),
        metadata=_metadata(events, chosen.namespace, chosen.name, chosen.version),
        chain=chain,
        note=note,
    )


def _metadata(events: Path, namespace: str, name: str, version: str | None) -> dict[str, Any]:
    """The artifact metadata the lineage recorded for one dataset version."""
    from workbench_dsl.backends.lineage.graph import read_events

    found: dict[str, Any] = {}
    for ev in read_events(events):
        for ds in [*(ev.get("inputs") or []), *(ev.get("outputs") or [])]:
            if ds.get("namespace") != namespace or ds.get("name") != name:
                continue
            facets = ds.get("facets") or {}
            if (facets.get("version") or {}).get("datasetVersion") != version:
                continue
            meta = (facets.get("workbench_artifact") or {}).get("metadata")
            if isinstance(meta, dict):
                found.update(meta)
    return found


def load_frame(ref: Reference) -> Any:
    """The reference dataset as a pandas DataFrame (CSV, TSV, JSON lines or Parquet)."""
    import pandas as pd

    path = Path(ref.uri[len("file://") :] if ref.uri.startswith("file://") else ref.uri)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if len(files) != 1:
            raise ReferenceNotFound(
                f"the training dataset {ref.dataset} is a folder of {len(files)} files at "
                f"{path}: give the training step one file (CSV, TSV, JSON lines or Parquet)"
            )
        path = files[0]
    if not path.is_file():
        raise ReferenceNotFound(
            f"the training dataset {ref.dataset} is no longer at {path} (artifacts removed?): "
            f"run the training pipeline again"
        )
    fmt = (ref.format or path.suffix.lstrip(".")).lower()
    try:
        if fmt in ("parquet", "pq"):
            return pd.read_parquet(path)
        if fmt in ("jsonl", "json", "ndjson"):
            return pd.read_json(path, lines=True)
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except Exception as e:
        raise ReferenceNotFound(
            f"cannot read the training dataset {ref.dataset} at {path} as a table: {e}"
        ) from None


def feature_columns(ref: Reference, frame: Any, width: int | None) -> list[str]:
    """The reference columns that the model's inputs are, in order.

    Args:
        width: How many values a logged instance has (None when instances are named).
    """
    cols = [str(c) for c in frame.columns]
    meta = ref.metadata
    listed = meta.get("features") or meta.get("columns")
    if isinstance(listed, list) and all(str(c) in cols for c in listed):
        return [str(c) for c in listed]
    label = meta.get("label") or meta.get("target")
    if isinstance(label, str) and label in cols:
        cols = [c for c in cols if c != label]
    elif width is not None and len(cols) == width + 1:
        named = [c for c in cols if c.lower() in LABEL_NAMES]
        cols = [c for c in cols if c != (named[0] if named else cols[-1])]
    if width is not None and len(cols) != width:
        raise ReferenceNotFound(
            f"the logged requests have {width} values each but the training dataset "
            f"{ref.dataset} has {len(cols)} feature columns ({', '.join(cols[:8])}): name "
            f"them in its metadata, e.g. data.metadata['features'] = [...] in the step "
            f"that writes it"
        )
    return cols


def dump(ref: Reference) -> str:
    return json.dumps(ref.to_json(), sort_keys=True)
