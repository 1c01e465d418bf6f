"""Launcher components: a KFP lightweight component that hands the user's function to a runtime.

``@train``, ``@sweep``, ``@register`` and ``@serve`` compile to ordinary KFP
lightweight components whose program holds

* the user's function source, as a string literal, and
* a generated wrapper with the step's component interface, whose body calls
  ``workbench_dsl.runtime.<kind>.launch(source, name, config_json, arguments)``.

KFP's own component factory builds the spec from the wrapper, so the compiled
YAML is KFP's and the local engine runs it like any other lightweight
component; the runtime decides at run time whether to run the function locally
or to create the cluster resource. The wrapper's parameters are copied as
source text from the user's ``def`` (annotations and defaults exactly as
written), which KFP requires to evaluate under ``from kfp.dsl import *`` anyway.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools
import json
import linecache
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench_dsl.errors import PipelineDefinitionError

_PRELUDE = "import kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n"


def function_source(fn: Callable[..., Any]) -> str:
    """The function's ``def`` and body, dedented, decorators dropped (as KFP embeds it)."""
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError) as e:
        raise PipelineDefinitionError(
            f"{fn.__name__}: cannot read the function's source ({e}); steps must be defined "
            f"in a file, not typed into an interactive prompt"
        ) from None
    lines = textwrap.dedent(src).split("\n")
    body = list(itertools.dropwhile(lambda x: not x.startswith(("def ", "async def ")), lines))
    if not body or body[0].startswith("async def "):
        raise PipelineDefinitionError(f"{fn.__name__}: steps must be plain (not async) functions")
    return "\n".join(body)


@dataclass(frozen=True)
class FunctionSignatureSource:
    """The parameters and return annotation of a function, as the source text the user wrote."""

    params: dict[str, str]
    returns: str | None


def signature_source(fn: Callable[..., Any]) -> FunctionSignatureSource:
    """Each parameter as written (``data: Input[Dataset]``, ``lr: float = 0.1``)."""
    src = function_source(fn)
    tree = ast.parse(src)
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    a = node.args
    if a.vararg or a.kwarg or a.posonlyargs:
        raise PipelineDefinitionError(
            f"{fn.__name__}: steps take named parameters only (no *args, **kwargs or '/')"
        )
    params: dict[str, str] = {}
    positional = a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(
        a.defaults
    )
    pairs = [
        *zip(positional, defaults, strict=True),
        *zip(a.kwonlyargs, a.kw_defaults, strict=True),
    ]
    for arg, default in pairs:
        text = ast.get_source_segment(src, arg) or arg.arg
        if default is not None:
            text += " = " + (ast.get_source_segment(src, default) or ast.unparse(default))
        params[arg.arg] = text
    returns = ast.get_source_segment(src, node.returns) if node.returns is not None else None
    return FunctionSignatureSource(params=params, returns=returns)


def _register_source(filename: str, source: str) -> None:
    # inspect.getsource (which KFP's component factory calls) reads through linecache.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def build_launcher(
    fn: Callable[..., Any],
    *,
    kind: str,
    params: Sequence[str],
    returns: str | None,
    config: dict[str, Any],
    image: str,
    packages: Sequence[str] = (),
    pip_index_urls: Sequence[str] = (),
    name: str | None = None,
) -> Any:
    """A KFP component whose wrapper has ``params``/``returns`` and calls ``runtime.<kind>``.

    Args:
        fn: The user's function (its source travels inside the component).
        kind: The runtime module under ``workbench_dsl.runtime`` that implements ``launch``.
        params: The wrapper's parameters as source text (see :func:`signature_source`).
        returns: The wrapper's return annotation as source text, or None.
        config: JSON-serialisable step settings handed to ``launch``.
        image: The component's base image.
        packages: Packages the component installs on top of the image.
        pip_index_urls: Extra package indexes.
        name: The wrapper's (and so the component's) name; default the function's.
    """
    from kfp import dsl

    fn_name = fn.__name__
    wrapper_name = name or fn_name
    source = function_source(fn)
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    ret = f" -> {returns}" if returns else ""
    lines = [f"def {wrapper_name}({', '.join(params)}){ret}:"]
    doc = inspect.getdoc(fn)
    if doc:
        lines.append(f"    {json.dumps(doc)}")
    # The arguments are taken before the import, so they hold the parameters only.
    lines += [
        "    _workbench_arguments = dict(locals())",
        f"    from workbench_dsl.runtime.{kind} import launch",
        f"    return launch({source!r}, {fn_name!r}, {config_json!r}, _workbench_arguments)",
        "",
    ]
    wrapper_src = "\n".join(lines)
    digest = hashlib.sha256(wrapper_src.encode()).hexdigest()[:12]
    filename = f"<workbench-{kind}-{wrapper_name}-{digest}>"
    full = _PRELUDE + "\n" + wrapper_src
    _register_source(filename, full)
    namespace: dict[str, Any] = {"__name__": f"workbench_launcher_{digest}"}
    try:
        exec(compile(full, filename, "exec", dont_inherit=True), namespace)
    except Exception as e:
        raise PipelineDefinitionError(
            f"{fn_name}: its annotations must evaluate under 'from kfp.dsl import *' and "
            f"'from typing import *', as KFP requires ({type(e).__name__}: {e})"
        ) from None
    wrapper = namespace[wrapper_name]
    return dsl.component(
        wrapper,
        base_image=image,
        packages_to_install=list(packages) or None,
        pip_index_urls=list(pip_index_urls) or None,
    )
