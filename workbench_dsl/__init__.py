"""workbench-dsl: ML workflows on Kubeflow Pipelines, run locally or compiled for a cluster.

Import everything from here::

    from workbench_dsl import pipeline, develop, Input, Output, Dataset, Model

Names are loaded on first use, so ``import workbench_dsl`` (and the CLI's start)
stays fast; KFP is imported only when a pipeline is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench_dsl._version import __version__

if TYPE_CHECKING:
    from kfp.dsl import (
        HTML,
        Artifact,
        ClassificationMetrics,
        Collected,
        Dataset,
        Elif,
        Else,
        ExitHandler,
        If,
        Input,
        InputPath,
        Markdown,
        Metrics,
        Model,
        OneOf,
        Output,
        OutputPath,
        ParallelFor,
        PipelineTaskFinalStatus,
        SlicedClassificationMetrics,
    )

    from workbench_dsl.client import get_run, latest_run, list_runs
    from workbench_dsl.compile.compiler import compile
    from workbench_dsl.dsl import space
    from workbench_dsl.dsl.develop import develop
    from workbench_dsl.dsl.pipeline import Pipeline, pipeline
    from workbench_dsl.dsl.register import register
    from workbench_dsl.dsl.serve import deploy, serve
    from workbench_dsl.dsl.step import Step
    from workbench_dsl.dsl.sweep import sweep
    from workbench_dsl.dsl.train import train
    from workbench_dsl.local_run import RunResult, run
    from workbench_dsl.runtime.report import report

_KFP_NAMES = (
    "Artifact",
    "ClassificationMetrics",
    "Collected",
    "Dataset",
    "Elif",
    "Else",
    "ExitHandler",
    "HTML",
    "If",
    "Input",
    "InputPath",
    "Markdown",
    "Metrics",
    "Model",
    "OneOf",
    "Output",
    "OutputPath",
    "ParallelFor",
    "PipelineTaskFinalStatus",
    "SlicedClassificationMetrics",
)

# name -> module that defines it (a module-valued name maps to the module itself)
_OWN_NAMES = {
    "compile": "workbench_dsl.compile.compiler",
    "deploy": "workbench_dsl.dsl.serve",
    "develop": "workbench_dsl.dsl.develop",
    "get_run": "workbench_dsl.client",
    "latest_run": "workbench_dsl.client",
    "list_runs": "workbench_dsl.client",
    "pipeline": "workbench_dsl.dsl.pipeline",
    "Pipeline": "workbench_dsl.dsl.pipeline",
    "register": "workbench_dsl.dsl.register",
    "report": "workbench_dsl.runtime.report",
    "run": "workbench_dsl.local_run",
    "RunResult": "workbench_dsl.local_run",
    "serve": "workbench_dsl.dsl.serve",
    "space": "workbench_dsl.dsl.space",
    "Step": "workbench_dsl.dsl.step",
    "sweep": "workbench_dsl.dsl.sweep",
    "train": "workbench_dsl.dsl.train",
}
_MODULE_NAMES = {"space"}

__all__ = [
    "HTML",
    "Artifact",
    "ClassificationMetrics",
    "Collected",
    "Dataset",
    "Elif",
    "Else",
    "ExitHandler",
    "If",
    "Input",
    "InputPath",
    "Markdown",
    "Metrics",
    "Model",
    "OneOf",
    "Output",
    "OutputPath",
    "ParallelFor",
    "Pipeline",
    "PipelineTaskFinalStatus",
    "RunResult",
    "SlicedClassificationMetrics",
    "Step",
    "__version__",
    "compile",
    "deploy",
    "develop",
    "get_run",
    "latest_run",
    "list_runs",
    "pipeline",
    "register",
    "report",
    "run",
    "serve",
    "space",
    "sweep",
    "train",
]


def __getattr__(name: str) -> Any:
    if name == "compile":
        # The subpackage is callable: workbench_dsl.compile(pipeline, path).
        value = importlib.import_module("workbench_dsl.compile")
    elif name in _MODULE_NAMES:
        value = importlib.import_module(_OWN_NAMES[name])
    elif name in _OWN_NAMES:
        value = getattr(importlib.import_module(_OWN_NAMES[name]), name)
    elif name in _KFP_NAMES:
        value = getattr(importlib.import_module("kfp.dsl"), name)
    else:
        raise AttributeError(f"module 'workbench_dsl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
