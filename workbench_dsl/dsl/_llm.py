"""``@serve(kind="llm")``: its knobs from the decorator's arguments, and the context length checked at the call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench_dsl.backends.deployer import LLMOptions
from workbench_dsl.errors import PipelineDefinitionError

#: The LLM knobs and their defaults (given with kind="predictive" they are refused).
_LLM_DEFAULTS = LLMOptions()


def check_context_length(name: str, llm: LLMOptions, model_uri: Any) -> None:
    """Refuse ``max_model_len`` beyond the model's context when ``model_uri`` is a model directory.

    Only a constant path is known now; a registered version (or a step's output)
    is checked by the deploy step from the version's tags, before it deploys.
    """
    from workbench_dsl.backends.registry import llm_tags
    from workbench_dsl.dsl._where import caller_location

    if llm.max_model_len is None or not isinstance(model_uri, str):
        return
    path = Path(model_uri.removeprefix("file://")).expanduser()
    config = llm_tags.read_config(path) if path.is_dir() else None
    if config is None:
        return
    problem = llm.context_problem(llm_tags.context_length_from_config(config), model_uri)
    if problem:
        raise PipelineDefinitionError(f"{caller_location()}: {name}(): {problem}")


def llm_options(kind: str, given: dict[str, Any], where: str) -> LLMOptions | None:
    """The LLM knobs of ``kind`` (None for a predictive endpoint, which must not set any)."""
    if kind == "llm":
        return LLMOptions(**given)
    changed = [k for k, v in given.items() if v != getattr(_LLM_DEFAULTS, k)]
    if changed and kind == "predictive":
        raise PipelineDefinitionError(
            f"{where}: {', '.join(f'{k}={given[k]!r}' for k in changed)} "
            f"{'is an LLM option' if len(changed) == 1 else 'are LLM options'}: "
            f"use @serve(kind='llm', ...) or drop {'it' if len(changed) == 1 else 'them'}"
        )
    return None
