"""The lineage graph read back from OpenLineage events, and the queries ``workbench lineage`` runs.

Nodes are *versions*: a task run (one OpenLineage run), or a dataset version (namespace,
name, ``version`` facet -- the content digest of an artifact, the number of a model
version, the revision of an endpoint). Edges go from a dataset version to the task runs
that read it and from a task run to the dataset versions it wrote. Pipeline runs are
kept beside the graph: their tasks point at them through the ``parent`` facet.

Walking upstream from an endpoint gives: endpoint <- deploy step <- model version <-
register step <- model artifact <- training step <- dataset <- ...
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench_dsl.errors import UsageError


@dataclass
class Node:
    """A task run, a pipeline run or a dataset version."""

    id: str
    kind: str  # task | pipeline | dataset | model_version | endpoint
    name: str
    version: str | None = None
    namespace: str = ""
    time: str = ""  # first seen
    status: str | None = None  # runs: the latest event type
    data: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        if self.kind in ("task", "pipeline"):
            run = self.data.get("engine_run_id") or self.id[:8]
            bits = [f"run {str(run)[:12]}", self.status or "?"]
            if self.data.get("cached"):
                bits.append("cached")
            if self.time:
                bits.append(self.time[:19].replace("T", " "))
            return f"{self.name} ({', '.join(bits)})"
        if self.kind == "model_version":
            return f"{self.name}/{self.version}"
        if self.kind == "endpoint":
            url = self.data.get("url")
            rev = f" revision {self.version}" if self.version else ""
            return f"{self.name}{rev}" + (f" ({url})" if url else "")
        ver = f" @ {_short(self.version)}" if self.version else ""
        extra = []
        if self.data.get("type"):
            extra.append(str(self.data["type"]))
        if self.data.get("rows") is not None:
            extra.append(f"{self.data['rows']} rows")
        if self.data.get("columns"):
            extra.append(f"{len(self.data['columns'])} columns")
        if self.data.get("size") is not None:
            extra.append(_size(int(self.data["size"])))
        return f"{self.name}{ver}" + (f" [{', '.join(extra)}]" if extra else "")

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "kind": self.kind, "name": self.name, "label": self.label()}
        for k in ("version", "namespace", "time", "status"):
            v = getattr(self, k)
            if v:
                out[k] = v
        out.update(self.data)
        return out


def _short(version: str) -> str:
    return version[:19] if version.startswith("sha256:") else version


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The RunEvents in an events file (bad lines skipped)."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(ev, dict) and "run" in ev and "job" in ev:
                yield ev


class LineageGraph:
    """Every run and dataset version found in a set of events."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.up: dict[str, set[str]] = {}  # node -> nodes it came from
        self.down: dict[str, set[str]] = {}
        self.tasks_of: dict[str, list[str]] = {}  # pipeline run node -> its task run nodes

    @classmethod
    def load(cls, path: Path) -> LineageGraph:
        g = cls()
        g.add_events(read_events(path))
        return g

    # -- building -------------------------------------------------------------------------

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        for ev in events:
            self._add(ev)

    def _edge(self, src: str, dst: str) -> None:
        self.down.setdefault(src, set()).add(dst)
        self.up.setdefault(dst, set()).add(src)

    def _add(self, ev: dict[str, Any]) -> None:
        run = ev.get("run") or {}
        job = ev.get("job") or {}
        rid = f"run:{run.get('runId')}"
        facets = run.get("facets") or {}
        parent = facets.get("parent")
        kind = "task" if parent else "pipeline"
        node = self.nodes.get(rid)
        if node is None:
            node = self.nodes[rid] = Node(
                rid,
                kind,
                str(job.get("name")),
                namespace=str(job.get("namespace", "")),
                time=str(ev.get("eventTime", "")),
            )
        node.status = ev.get("eventType", node.status)
        node.data["end_time" if node.status != "START" else "start_time"] = ev.get("eventTime")
        wb = facets.get("workbench_task") or facets.get("workbench_run") or {}
        if wb.get("runId"):
            node.data["engine_run_id"] = wb["runId"]
        if kind == "task":
            if wb.get("task"):
                node.data["task"] = wb["task"]
            for k in ("cached", "attempts", "durationS", "launcher"):
                if wb.get(k) is not None:
                    node.data[k] = wb[k]
            prid = f"run:{((parent or {}).get('run') or {}).get('runId')}"
            node.data["pipeline_run"] = prid
            if rid not in self.tasks_of.setdefault(prid, []):
                self.tasks_of[prid].append(rid)
        for key in ("errorMessage", "workbench_sweep", "workbench_model_version", "nominalTime"):
            if key in facets:
                f = {k: v for k, v in facets[key].items() if not k.startswith("_")}
                node.data[key] = f
        for ds in ev.get("inputs") or []:
            self._edge(self._dataset(ds, ev), rid)
        for ds in ev.get("outputs") or []:
            self._edge(rid, self._dataset(ds, ev))

    def _dataset(self, ds: dict[str, Any], ev: dict[str, Any]) -> str:
        ns, name = str(ds.get("namespace", "")), str(ds.get("name", ""))
        facets = ds.get("facets") or {}
        version = (facets.get("version") or {}).get("datasetVersion")
        did = f"dataset:{ns}/{name}" + (f"@{version}" if version else "")
        kind = (
            "model_version"
            if name.startswith("models:/")
            else "endpoint"
            if name.startswith("endpoint:")
            else "dataset"
        )
        node = self.nodes.get(did)
        if node is None:
            node = self.nodes[did] = Node(
                did, kind, name, version=version, namespace=ns, time=str(ev.get("eventTime", ""))
            )
        art = facets.get("workbench_artifact") or {}
        for k in ("uri", "type", "format"):
            if art.get(k):
                node.data[k] = art[k]
        ep = facets.get("workbench_endpoint") or {}
        for k in ("url", "modelUri"):
            if ep.get(k):
                node.data[k] = ep[k]
        schema = facets.get("schema") or {}
        if schema.get("fields"):
            node.data["columns"] = [
                {"name": f.get("name"), "type": f.get("type")} for f in schema["fields"]
            ]
        stats = (ds.get("outputFacets") or {}).get("outputStatistics") or {}
        if stats.get("rowCount") is not None:
            node.data["rows"] = stats["rowCount"]
        size = stats.get("size") or (
            (ds.get("inputFacets") or {}).get("inputStatistics") or {}
        ).get("size")
        if size is not None:
            node.data["size"] = size
        return did

    # -- finding a target -------------------------------------------------------------------

    def resolve(self, target: str) -> Node:
        """The node for ``target``: ``models:/NAME/N``, ``endpoint:NAME``, ``run:ID``, a run id,
        a dataset name (``pipeline/task/output[@sha256:...]``) or an artifact's path/URI."""
        t = target.strip()
        found: list[Node] = []
        if t.startswith("models:/"):
            name, _, version = t.rstrip("/").rpartition("/")
            if name == "models:":  # models:/NAME: its latest version
                name, version = t.rstrip("/"), ""
            found = [
                n
                for n in self.nodes.values()
                if n.kind == "model_version"
                and n.name == name
                and (not version or n.version == version)
            ]
            if not version:
                found = sorted(
                    found, key=lambda n: int(n.version or 0) if (n.version or "").isdigit() else 0
                )[-1:]
        elif t.startswith("endpoint:"):
            found = self._latest(
                [n for n in self.nodes.values() if n.kind == "endpoint" and n.name == t]
            )
        elif t.startswith("run:"):
            found = self._runs(t[4:])
        else:
            found = self._artifacts(t) or self._runs(t)
        if not found:
            raise UsageError(
                f"nothing in the lineage matches {target!r} (try models:/NAME/N, endpoint:NAME, "
                f"run:RUN_ID, a dataset name like pipeline/task/output, or an artifact path)"
            )
        if len(found) > 1:
            names = ", ".join(sorted({n.label() for n in found})[:5])
            raise UsageError(f"{target!r} matches several things ({names}); be more specific")
        return found[0]

    def _latest(self, nodes: list[Node]) -> list[Node]:
        return sorted(nodes, key=lambda n: n.time)[-1:]

    def _runs(self, ref: str) -> list[Node]:
        exact = [
            n
            for n in self.nodes.values()
            if n.kind == "pipeline" and (n.data.get("engine_run_id") == ref or n.id == f"run:{ref}")
        ]
        if exact:
            return exact
        return [
            n
            for n in self.nodes.values()
            if n.kind == "pipeline"
            and (
                str(n.data.get("engine_run_id", "")).startswith(ref)
                or n.id.startswith(f"run:{ref}")
            )
        ]

    def _artifacts(self, ref: str) -> list[Node]:
        name, _, version = ref.partition("@")
        datasets = [n for n in self.nodes.values() if n.kind == "dataset"]
        by_name = [n for n in datasets if n.name == name]
        if by_name:
            if version:
                v = version if version.startswith("sha256:") else f"sha256:{version}"
                return [n for n in by_name if (n.version or "").startswith(v)]
            return self._latest(by_name)
        path = ref[len("file://") :] if ref.startswith("file://") else ref
        if path.startswith(("/", ".")):
            path = str(Path(path).resolve())
        return self._latest(
            [
                n
                for n in datasets
                if n.data.get("uri") in (ref, path) or (n.namespace == "file" and n.name == path)
            ]
        )

    # -- walking ----------------------------------------------------------------------------

    def walk(self, start: str, direction: str, depth: int = 50) -> dict[str, Any]:
        """A tree ``{"id", "children": [...]}`` from ``start`` upstream or downstream.

        A node met twice is shown once; later mentions carry ``"seen": true``. Upstream, a
        dataset version produced by several runs (the same content again, or a cache hit)
        follows the run that first produced it; the others are listed in ``also``.
        """
        edges = self.up if direction == "up" else self.down
        seen: set[str] = set()

        def visit(nid: str, d: int) -> dict[str, Any]:
            if nid in seen:
                return {"id": nid, "seen": True, "children": []}
            seen.add(nid)
            node: dict[str, Any] = {"id": nid, "children": []}
            nxt = sorted(
                edges.get(nid, ()),
                key=lambda x: (self.nodes[x].data.get("cached", False), self.nodes[x].time, x),
            )
            if self.nodes[nid].kind not in ("task", "pipeline") and len(nxt) > 1:
                # Reruns (cache hits, the same content again) would repeat the same chain:
                # follow one run per job, list the others.
                keep: dict[str, str] = {}
                for x in nxt:
                    keep.setdefault("" if direction == "up" else self.nodes[x].name, x)
                node["also"] = [x for x in nxt if x not in keep.values()]
                nxt = list(keep.values())
            if d < depth:
                node["children"] = [visit(c, d + 1) for c in nxt]
            return node

        return visit(start, 0)

    def run_tasks(self, run_node: str) -> list[str]:
        return sorted(self.tasks_of.get(run_node, []), key=lambda t: self.nodes[t].time)


def tree_ids(tree: dict[str, Any]) -> set[str]:
    out = {tree["id"]}
    for c in tree.get("children", []):
        out |= tree_ids(c)
    for a in tree.get("also", []):
        out.add(a)
    return out
