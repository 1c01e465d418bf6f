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

    from workbench_dsl.compile.compiler import compile
    from workbench_dsl.dsl.develop import develop
    from workbench_dsl.dsl.pipeline import Pipeline, pipeline
    from workbench_dsl.dsl.step import Step

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

_OWN_NAMES = {
    "compile": "workbench_dsl.compile.compiler",
    "develop": "workbench_dsl.dsl.develop",
    "pipeline": "workbench_dsl.dsl.pipeline",
    "Pipeline": "workbench_dsl.dsl.pipeline",
    "Step": "workbench_dsl.dsl.step",
}

__all__ = ["__version__", *_KFP_NAMES, *sorted(_OWN_NAMES)]


def __getattr__(name: str) -> Any:
    if name in _OWN_NAMES:
        value = getattr(importlib.import_module(_OWN_NAMES[name]), name)
    elif name in _KFP_NAMES:
        value = getattr(importlib.import_module("kfp.dsl"), name)
    else:
        raise AttributeError(f"module 'workbench_dsl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
