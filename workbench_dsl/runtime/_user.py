"""Loading the user's function from the source a launcher component carries."""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from collections.abc import Callable
from typing import Any

_PRELUDE = "import kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n"


def load_function(source: str, name: str) -> Callable[..., Any]:
    """Define the user's function from its source, in a module of its own.

    The module gets the same imports KFP gives an embedded component, and a
    linecache entry so tracebacks show the user's lines. It is registered in
    ``sys.modules`` so objects it defines can be pickled to worker processes.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    mod_name = f"workbench_user_{name}_{digest}"
    existing = sys.modules.get(mod_name)
    if existing is not None and hasattr(existing, name):
        return getattr(existing, name)  # type: ignore[no-any-return]
    filename = f"<step {name}>"
    text = _PRELUDE + "\n" + source
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    module = types.ModuleType(mod_name)
    module.__dict__["__file__"] = filename
    sys.modules[mod_name] = module
    exec(compile(text, filename, "exec", dont_inherit=True), module.__dict__)
    fn = module.__dict__.get(name)
    if not callable(fn):
        raise RuntimeError(f"the step's source does not define a function {name!r}")
    return fn  # type: ignore[no-any-return]
