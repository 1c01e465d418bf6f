"""Compilation: a pipeline (DSL or plain KFP) to deterministic, validated KFP v2 YAML.

This package is also the public ``workbench_dsl.compile(pipeline, path)``: a
subpackage named ``compile`` becomes the ``workbench_dsl.compile`` attribute as
soon as anything imports it, which would shadow a function of that name, so the
package itself is made callable and forwards to :func:`compiler.compile`.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, pipeline: Any, path: str | os.PathLike[str]) -> Path:
        """Compile ``pipeline`` to KFP v2 YAML at ``path`` (see ``compiler.compile``)."""
        from workbench_dsl.compile.compiler import compile as compile_pipeline

        return compile_pipeline(pipeline, path)


sys.modules[__name__].__class__ = _CallableModule
