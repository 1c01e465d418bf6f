"""Compile a pipeline to KFP v2 YAML with KFP's own compiler, deterministically.

The bytes depend only on the pipeline's source and the KFP SDK version: KFP's
output has sorted keys and no timestamps, and we add nothing. The result is
validated (cycles, and KFP's own loader reads it back) before anything is
written, and written atomically, so a failed compile leaves no file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from workbench_dsl.compile.loader import kfp_component, pipeline_name
from workbench_dsl.compile.validate import check_cycles
from workbench_dsl.errors import PipelineDefinitionError


def compile_to_text(pipeline: Any) -> str:
    """The compiled YAML of a DSL or KFP pipeline."""
    import yaml
    from kfp import compiler

    component = kfp_component(pipeline)
    with tempfile.TemporaryDirectory(prefix="workbench-compile-") as tmp:
        out = Path(tmp) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(component, str(out))
        except PipelineDefinitionError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PipelineDefinitionError(
                f"pipeline {pipeline_name(pipeline)!r} does not compile: {first}"
            ) from e
        text = out.read_text(encoding="utf-8")
    docs = [d for d in yaml.safe_load_all(text) if d]
    check_cycles(docs[0])
    _check_loadable(text, pipeline_name(pipeline))
    return text


def _check_loadable(text: str, name: str) -> None:
    from kfp import components

    try:
        components.load_component_from_text(text)
    except Exception as e:  # pragma: no cover - a KFP compiler bug if it happens
        raise PipelineDefinitionError(
            f"pipeline {name!r} compiled to YAML that KFP cannot load back: {e}"
        ) from e


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def compile(pipeline: Any, path: str | os.PathLike[str]) -> Path:
    """Compile ``pipeline`` to KFP v2 YAML at ``path`` and return the path."""
    text = compile_to_text(pipeline)
    out = Path(path)
    write_atomic(out, text)
    return out
