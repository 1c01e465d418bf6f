"""The compiled pipeline as the engine reads it: KFP's PipelineSpec plus its platform document.

A compiled KFP v2 file is YAML (or JSON) with one PipelineSpec document and,
when kfp-kubernetes was used, a second ``platforms:`` document. See
https://www.kubeflow.org/docs/components/pipelines/user-guides/core-functions/compile-a-pipeline/
and ``pipeline_spec.proto`` in kubeflow/pipelines for the fields read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.errors import UsageError


def load_documents(text: str) -> list[dict[str, Any]]:
    """The YAML/JSON documents of a compiled pipeline file, empty ones dropped."""
    if text.lstrip().startswith("{"):
        # JSON (what the run store keeps for a spec given as a dict): json is many times
        # faster than YAML's constructor on a spec of thousands of tasks.
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(doc, dict):
                return [doc] if doc else []
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = [d for d in yaml.load_all(text, Loader=loader) if d]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"not a compiled pipeline: invalid YAML{where}: {problem}") from None
    for d in docs:
        if not isinstance(d, dict):
            raise UsageError("not a compiled pipeline: a document is not a mapping")
    return docs


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
