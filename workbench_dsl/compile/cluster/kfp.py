"""The compiled pipeline as the KFP backend reads it: PipelineSpec and kubernetes platform config.

The KFP API server and driver parse the YAML into the protobuf messages of
``kfp-pipeline-spec`` (``PipelineSpec``, ``PlatformSpec``) and of
``kfp-kubernetes`` (``KubernetesExecutorConfig``), refusing fields they do not
know. This parses them the same way, strictly, and checks what the driver
needs that the messages cannot say (every task's component and executor exist).
"""

from __future__ import annotations

from typing import Any


def check_pipeline(docs: list[dict[str, Any]]) -> list[str]:
    """Problems of a compiled pipeline (its YAML documents) for a KFP 2.x backend."""
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb

    problems: list[str] = []
    if not docs:
        return ["the compiled pipeline is empty"]
    spec = docs[0]
    try:
        json_format.ParseDict(spec, pb.PipelineSpec(), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        problems.append(f"PipelineSpec: {_line(e)}")
    problems += _references(spec)
    for doc in docs[1:]:
        try:
            json_format.ParseDict(doc, pb.PlatformSpec(), ignore_unknown_fields=False)
        except json_format.ParseError as e:
            problems.append(f"PlatformSpec: {_line(e)}")
            continue
        executors = (
            ((doc.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}
        ).get("executors") or {}
        known = set((spec.get("deploymentSpec") or {}).get("executors") or {})
        for label, config in sorted(executors.items()):
            if label not in known:
                problems.append(f"platform config: executor {label} is not in the PipelineSpec")
            try:
                json_format.ParseDict(config, k8s.KubernetesExecutorConfig())
            except json_format.ParseError as e:
                problems.append(f"platform config of {label}: {_line(e)}")
    return problems


def _references(spec: dict[str, Any]) -> list[str]:
    components = spec.get("components") or {}
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    problems = []
    dags = {"root": spec.get("root") or {}, **components}
    for owner, dag in dags.items():
        for name, task in ((dag.get("dag") or {}).get("tasks") or {}).items():
            ref = (task.get("componentRef") or {}).get("name")
            if ref not in components:
                problems.append(f"{owner}: task {name} runs unknown component {ref}")
    for name, comp in components.items():
        label = comp.get("executorLabel")
        if label and label not in executors:
            problems.append(f"component {name}: executor {label} is missing")
    return problems


def _line(e: Exception) -> str:
    return str(e).split("\n", 1)[0]
