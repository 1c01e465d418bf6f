"""What ``@serve`` decorates: a predictor (function or class), or an LLM endpoint's stub."""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from typing import Any

from workbench_dsl.dsl._where import function_location
from workbench_dsl.errors import PipelineDefinitionError


def location(obj: Any) -> str:
    """``file:line`` of a function or class."""
    if inspect.isclass(obj):
        try:
            return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
        except (OSError, TypeError):
            return obj.__qualname__  # type: ignore[no-any-return]
    return function_location(obj)


def predictor_source(obj: Any) -> str:
    """The predictor's ``def`` or ``class`` and body, dedented, decorators dropped."""
    try:
        src = inspect.getsource(obj)
    except (OSError, TypeError) as e:
        raise PipelineDefinitionError(
            f"{obj.__name__}: cannot read the predictor's source ({e}); define it in a file"
        ) from None
    lines = textwrap.dedent(src).split("\n")
    body = itertools.dropwhile(lambda x: not x.startswith(("def ", "class ")), lines)
    return "\n".join(body)


def check_predictor(obj: Any, step: str) -> None:
    """Refuse what cannot serve: a class without ``predict``, a function without two parameters."""
    if inspect.isclass(obj):
        if not callable(getattr(obj, "predict", None)):
            raise PipelineDefinitionError(
                f"{location(obj)}: {step}: a predictor class needs a predict(self, instances) "
                f"method (and optionally load(self, model_dir))"
            )
        return
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        raise PipelineDefinitionError(
            f"@serve decorates a function predict(model, instances) or a class with load and "
            f"predict (got {obj!r}; async functions are not supported)"
        )
    params = [
        p
        for p in inspect.signature(obj).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) != 2:
        raise PipelineDefinitionError(
            f"{function_location(obj)}: {step}: a predictor function takes (model, instances) "
            f"(it takes {len(params)} parameter{'s' if len(params) != 1 else ''})"
        )


def _is_stub_statement(node: ast.stmt) -> bool:
    if isinstance(node, ast.Pass):
        return True
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and (isinstance(node.value.value, str) or node.value.value is Ellipsis)
    )


def check_llm_stub(obj: Any, step: str) -> None:
    """Refuse an LLM endpoint's function unless its body is a docstring, ``...`` or ``pass``.

    The model runs in KServe's Hugging Face runtime (vLLM on a cluster,
    Transformers locally): there is nowhere for predictor code to run, and
    silently dropping it would serve something other than what is written.
    """
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        raise PipelineDefinitionError(
            f"{step}: @serve(kind='llm') decorates a plain function stub such as "
            f'def chat(): """What it answers.""" (got {obj!r})'
        )
    where = f"{function_location(obj)}: {step}"
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError) as e:
        raise PipelineDefinitionError(
            f"{where}: cannot read the function's source ({e}); define it in a file"
        ) from None
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if node is None or not all(_is_stub_statement(s) for s in node.body):
        raise PipelineDefinitionError(
            f"{where}: @serve(kind='llm') runs the model in KServe's Hugging Face runtime, so "
            f"the function must be a stub (a docstring, '...' or 'pass'); put pre/post-processing "
            f"in the client"
        )
