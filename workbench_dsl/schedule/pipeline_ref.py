"""A pipeline named on the command line, compiled and with its ``-p`` values typed.

``PIPELINE`` is a compiled KFP YAML/JSON file or a DSL module ``file.py[:name]``
(or ``package.module[:name]``), compiled in memory to the same text ``workbench
compile`` writes. Parameters are typed by the pipeline's own input definitions,
with the engine's rules and one-line errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PreparedPipeline:
    """A compiled pipeline ready to run or submit.

    Attributes:
        ref: The reference, with a file path made absolute (so a schedule works from any
            directory).
        name: The pipeline's name.
        text: The compiled YAML.
        params: The given ``-p`` values, typed (defaults not filled in).
        source_file: The ``.py`` file it came from, if any.
    """

    ref: str
    name: str
    text: str
    params: dict[str, Any]
    source_file: str | None = None


def absolute_ref(ref: str) -> str:
    from workbench_dsl.compile.loader import split_ref

    target, name = split_ref(ref)
    if os.path.exists(target):
        target = str(Path(target).resolve())
    return f"{target}:{name}" if name else target


def prepare(
    ref: str,
    raw_params: dict[str, str] | None = None,
    event_inputs: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> PreparedPipeline:
    """Compile ``ref`` (if it is not compiled already) and type ``raw_params`` by its inputs.

    ``event_inputs``: given the pipeline's input definitions, sample values of the inputs
    an event will fill, checked with the rest (and not kept in ``params``).
    """
    from workbench_dsl.compile.loader import is_compiled_file, read_compiled, split_ref
    from workbench_dsl.engine.params import pipeline_arguments
    from workbench_dsl.engine.spec import PipelineSpec

    raw_params = dict(raw_params or {})
    target, _ = split_ref(ref)
    source_file = None
    if is_compiled_file(target):
        text = read_compiled(target)
    else:
        from workbench_dsl.compile.compiler import compile_to_text
        from workbench_dsl.compile.loader import load_pipeline

        text = compile_to_text(load_pipeline(ref))
        if target.endswith(".py"):
            source_file = str(Path(target).resolve())
    spec = PipelineSpec.parse(text)
    check = dict(raw_params)
    if event_inputs is not None:
        check = {**event_inputs(dict(spec.input_definitions)), **check}
    typed = pipeline_arguments(spec.input_definitions, check, from_cli=True)
    given = {k: v for k, v in typed.items() if k in raw_params}
    return PreparedPipeline(
        ref=absolute_ref(ref), name=spec.name, text=text, params=given, source_file=source_file
    )
