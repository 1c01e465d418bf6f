"""The compiled pipeline as the engine reads it: KFP's PipelineSpec plus its platform document.

A compiled KFP v2 file is YAML (or JSON) with one PipelineSpec document and,
when kfp-kubernetes was used, a second ``platforms:`` document. See
https://www.kubeflow.org/docs/components/pipelines/user-guides/core-functions/compile-a-pipeline/
and ``pipeline_spec.proto`` in kubeflow/pipelines for the fields read here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import accumulate
from operator import sub
from typing import Any

from workbench_dsl.errors import UsageError

# Deeper than any compiled pipeline (about 15 levels, plus a parameter value's own):
# deeper text crashes libyaml's C composer (it recurses in C), and deeper values
# exceed Python's recursion limit in everything that copies or encodes them.
MAX_DEPTH = 200
# An anchor definition (``&name`` before a space or a flow indicator): without one
# the text has no aliases, so its values cannot be shared, expanded or cyclic.
# ``&&`` in a shell command and ``a & b`` in Python source do not match.
_ANCHOR = re.compile(r"&(?<![^\s\[{,:]&)[^\s\[\]{},&]+(?=[\s\[\]{},]|$)")
_NOT_FLOW = bytes(b for b in range(256) if b not in b"[]{}")
# A line whose indentation (with "- " and "? " entries) could nest past 100 levels.
_DEEP_BLOCK = re.compile(r"\n[ ?-]{100}")
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def load_documents(text: str) -> list[dict[str, Any]]:
    """The YAML/JSON documents of a compiled pipeline file, empty ones dropped.

    Raises:
        UsageError: not YAML or JSON, not mappings, nested deeper than
            :data:`MAX_DEPTH`, or aliases that expand past the text's size or refer to
            the value that holds them.
    """
    bound = _nesting_bound(text)
    docs: list[Any] | None = None
    if text.lstrip().startswith("{"):
        # JSON (what the run store keeps for a spec given as a dict): json is many times
        # faster than YAML's constructor on a spec of thousands of tasks.
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            pass
        except RecursionError:
            raise UsageError(_TOO_DEEP) from None
        else:
            if isinstance(doc, dict):
                docs = [doc] if doc else []
    if docs is None:
        docs = _load_yaml(text, bound)
    for d in docs:
        if not isinstance(d, dict):
            raise UsageError("not a compiled pipeline: a document is not a mapping")
    if bound > MAX_DEPTH or _ANCHOR.search(text):
        _check_shape(docs, len(text))
    return docs


_TOO_DEEP = f"not a compiled pipeline: it is nested more than {MAX_DEPTH} levels deep"


def _load_yaml(text: str, bound: int) -> list[Any]:
    import yaml

    # libyaml's composer recurses in C: text that may nest deeper than it safely can goes
    # through the Python loader, whose recursion ends in a RecursionError instead.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if bound <= 1000 else yaml.SafeLoader
    try:
        return [d for d in yaml.load_all(text, Loader=loader) if d]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"not a compiled pipeline: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise UsageError(_TOO_DEEP) from None


def _nesting_bound(text: str) -> int:
    """An upper bound of how deep ``text`` can nest (flow brackets plus block indentation).

    Each block level indents by at least one column (or one ``- ``/``? `` entry).

    Brackets inside strings count too (the bound only decides how carefully the text is
    read); a closing bracket never takes the count below zero.
    """
    brackets = text.encode("utf-8", "surrogatepass").translate(None, _NOT_FLOW)
    sums = list(accumulate(map(_DELTA.__getitem__, brackets)))
    lows = accumulate(sums, min, initial=0)  # the lowest count so far (stray closers)
    worst = max(map(sub, sums, lows), default=0)
    if _DEEP_BLOCK.search("\n" + text[:100]) or _DEEP_BLOCK.search(text):
        return worst + len(text)  # a deep block structure is possible: read it with care
    return worst + 100


def _check_shape(docs: list[Any], text_size: int) -> None:
    """Refuse values nested deeper than :data:`MAX_DEPTH`, alias cycles and alias bombs.

    One pass, iterative, each distinct container once (shared ones are memoised), so
    a billion-laughs text is measured without being expanded.
    """
    limit = max(1_000_000, text_size)
    done: dict[int, tuple[int, int]] = {}  # id -> (depth below, values when expanded)
    open_ids: set[int] = set()
    stack: list[tuple[Any, bool]] = [(docs, False)]
    while stack:
        obj, finish = stack.pop()
        key = id(obj)
        kids = [
            k
            for k in (obj.values() if isinstance(obj, dict) else obj)
            if isinstance(k, dict | list)
        ]
        if not finish:
            if key in done:
                continue
            if key in open_ids:
                raise UsageError(
                    "not a compiled pipeline: an alias refers to a value that holds it"
                )
            open_ids.add(key)
            stack.append((obj, True))
            stack.extend((k, False) for k in kids if id(k) not in done)
            continue
        open_ids.discard(key)
        depth = 1 + max((done[id(k)][0] for k in kids), default=0)
        size = 1 + len(obj) + sum(done[id(k)][1] for k in kids)
        if depth > MAX_DEPTH + 1:  # + 1: the list of documents
            raise UsageError(_TOO_DEEP)
        if size > limit:
            raise UsageError(
                f"not a compiled pipeline: its aliases expand to more than {limit:,} values"
            )
        done[key] = (depth, size)


_EMPTY: dict[str, Any] = {}


@dataclass
class PipelineSpec:
    """A parsed PipelineSpec with the lookups the scheduler needs.

    Attributes:
        spec: The PipelineSpec document as a dict.
        platform: ``platforms.kubernetes`` of the platform document (or ``{}``).
        text: The text it was parsed from (kept for the run store and resume).
    """

    spec: dict[str, Any]
    platform: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def parse(cls, source: str | dict[str, Any]) -> PipelineSpec:
        """Parse compiled YAML/JSON text (or an already-loaded PipelineSpec dict)."""
        if isinstance(source, dict):
            return cls.from_documents([source], json.dumps(source, sort_keys=True))
        return cls.from_documents(load_documents(source), source)

    @classmethod
    def from_documents(cls, docs: list[dict[str, Any]], text: str) -> PipelineSpec:
        """The pipeline in documents already loaded from ``text`` (see :func:`load_documents`)."""
        spec: dict[str, Any] | None = None
        platform: dict[str, Any] = {}
        for d in docs:
            if "platforms" in d:
                platform = dict((d.get("platforms") or {}).get("kubernetes") or {})
            elif "root" in d and spec is None:
                spec = d
            elif "pipelineSpec" in d and spec is None:  # a PipelineJob wrapper
                spec = d["pipelineSpec"]
        if spec is None:
            kind = (
                "a component, not a pipeline"
                if docs and "implementation" in docs[0]
                else ("no PipelineSpec document (no 'root')")
            )
            raise UsageError(f"not a compiled KFP v2 pipeline: {kind}")
        if "dag" not in (spec.get("root") or {}):
            raise UsageError(
                "not a compiled KFP v2 pipeline: 'root' has no 'dag' (a single component? "
                "wrap it in a @dsl.pipeline)"
            )
        return cls(spec=spec, platform=platform, text=text)

    # -- lookups ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str((self.spec.get("pipelineInfo") or {}).get("name") or "pipeline")

    # The lookups below hand out the spec's own dicts (read them, never change them):
    # they are asked for per task, and copying every executor per call was a visible
    # share of a cached rerun of thousands of tasks.

    @property
    def root(self) -> dict[str, Any]:
        return self.spec["root"]  # type: ignore[no-any-return]

    @property
    def components(self) -> dict[str, Any]:
        return self.spec.get("components") or _EMPTY

    @property
    def executors(self) -> dict[str, Any]:
        return (self.spec.get("deploymentSpec") or {}).get("executors") or _EMPTY  # type: ignore[no-any-return]

    def component(self, ref: str) -> dict[str, Any]:
        try:
            return self.components[ref]  # type: ignore[no-any-return]
        except KeyError:
            raise UsageError(
                f"invalid pipeline: component {ref!r} is referenced but not defined"
            ) from None

    def executor(self, label: str) -> dict[str, Any]:
        try:
            return self.executors[label]  # type: ignore[no-any-return]
        except KeyError:
            raise UsageError(
                f"invalid pipeline: executor {label!r} is referenced but not defined"
            ) from None

    def platform_executor(self, label: str) -> dict[str, Any]:
        """The kfp-kubernetes settings of an executor (``{}`` when none)."""
        execs = (self.platform.get("deploymentSpec") or {}).get("executors") or {}
        return dict(execs.get(label) or {})

    @property
    def input_definitions(self) -> dict[str, Any]:
        return dict((self.root.get("inputDefinitions") or {}).get("parameters") or {})

    @property
    def input_artifact_definitions(self) -> dict[str, Any]:
        return dict((self.root.get("inputDefinitions") or {}).get("artifacts") or {})

    @property
    def workspace(self) -> dict[str, Any] | None:
        """``pipelineConfig.workspace`` from the platform document, if set."""
        cfg = self.platform.get("pipelineConfig") or {}
        ws = cfg.get("workspace")
        return dict(ws) if isinstance(ws, dict) else None


def component_ref(task: dict[str, Any]) -> str:
    return str((task.get("componentRef") or {}).get("name") or "")


def is_dag(component: dict[str, Any]) -> bool:
    return "dag" in component


def iterator_of(task: dict[str, Any]) -> dict[str, Any] | None:
    """``parameterIterator``/``artifactIterator`` of a ParallelFor task, tagged with its kind."""
    if "parameterIterator" in task:
        return {"kind": "parameter", **task["parameterIterator"]}
    if "artifactIterator" in task:
        return {"kind": "artifact", **task["artifactIterator"]}
    return None


def upstream_tasks(task: dict[str, Any]) -> set[str]:
    """Sibling tasks this task waits for: ``dependentTasks`` and every producer it reads."""
    deps = set(task.get("dependentTasks") or [])
    inputs = task.get("inputs") or {}
    for spec in (inputs.get("parameters") or {}).values():
        for key in ("taskOutputParameter", "taskFinalStatus"):
            producer = (spec.get(key) or {}).get("producerTask")
            if producer:
                deps.add(producer)
    for spec in (inputs.get("artifacts") or {}).values():
        producer = (spec.get("taskOutputArtifact") or {}).get("producerTask")
        if producer:
            deps.add(producer)
    return deps


def trigger_strategy(task: dict[str, Any]) -> str:
    return str((task.get("triggerPolicy") or {}).get("strategy") or "ALL_UPSTREAM_TASKS_SUCCEEDED")


def caching_enabled(task: dict[str, Any]) -> bool:
    return bool((task.get("cachingOptions") or {}).get("enableCache", False))
