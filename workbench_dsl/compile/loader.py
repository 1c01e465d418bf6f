"""Finding a pipeline from a reference: ``path/to/module.py[:name]`` or ``package.module[:name]``.

A pipeline is a ``@pipeline`` of this project or a plain ``@kfp.dsl.pipeline``;
a compiled file (``.yaml``, ``.yml``, ``.json``) is read as is by
:func:`read_compiled`. Every way this can go wrong is a one-line :class:`UsageError`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from workbench_dsl.errors import UsageError, WorkbenchError

#: The suffixes of a compiled pipeline file (KFP writes YAML; JSON is YAML too).
COMPILED_SUFFIXES = (".yaml", ".yml", ".json")


def is_compiled_file(ref: str) -> bool:
    """Whether ``ref`` names a compiled pipeline file rather than a module."""
    return Path(ref).suffix.lower() in COMPILED_SUFFIXES


def read_compiled(ref: str) -> str:
    """The text of a compiled pipeline file (parsing it says whether it is a pipeline)."""
    path = Path(ref).expanduser()
    if path.is_dir():
        raise UsageError(f"{ref} is a directory: give a compiled pipeline file (.yaml)")
    if not path.is_file():
        raise UsageError(f"no such file: {ref}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {ref}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{ref} is not a compiled pipeline: it is not UTF-8 text; give the YAML that "
            f"`workbench compile` writes"
        ) from None


def is_pipeline(obj: Any) -> bool:
    """A DSL pipeline, or a KFP pipeline (GraphComponent)."""
    if getattr(type(obj), "__workbench_pipeline__", False):
        return True
    if "kfp" in sys.modules:
        from kfp.dsl.graph_component import GraphComponent

        return isinstance(obj, GraphComponent)
    return False


def pipeline_name(obj: Any) -> str:
    """The name a pipeline compiles under."""
    if getattr(type(obj), "__workbench_pipeline__", False):
        return str(obj.name)
    return str(obj.name)


def kfp_component(obj: Any) -> Any:
    """The KFP GraphComponent behind a DSL or KFP pipeline."""
    if getattr(type(obj), "__workbench_pipeline__", False):
        return obj.component
    return obj


def split_ref(ref: str) -> tuple[str, str | None]:
    """``a/b.py:name`` -> (``a/b.py``, ``name``)."""
    target, sep, name = ref.rpartition(":")
    if sep and target and name and "/" not in name and "\\" not in name:
        return target, name
    return ref, None


def _user_location(exc: BaseException) -> str | None:
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fname = frame.f_code.co_filename
        if "site-packages" in fname or "/workbench_dsl/" in fname or fname.startswith("<frozen"):
            continue
        found = f"{fname}:{lineno}"
    return found


def import_module(target: str) -> ModuleType:
    """Import a module from a file path or a dotted name."""
    if is_compiled_file(target):
        raise UsageError(
            f"{target} is already a compiled pipeline, not a Python module: run, plan, "
            f"schedule or submit it as is, or give path/to/module.py[:name] to compile"
        )
    if Path(target).is_dir() and not (Path(target) / "__init__.py").is_file():
        raise UsageError(
            f"{target} is a directory: give path/to/module.py[:name] or package.module[:name]"
        )
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if is_file:
        path = Path(target).expanduser()
        if not path.is_file():
            raise UsageError(
                f"module not found: {target} (no such file); give path/to/module.py[:name] "
                f"or package.module[:name]"
            )
        path = path.resolve()
        mod_name = "_workbench_pipeline_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"module not found: {target} (not a Python module)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        sys.path.insert(0, str(path.parent))
        try:
            _exec(lambda: spec.loader.exec_module(module), target)  # type: ignore[union-attr]
        except BaseException:
            sys.modules.pop(mod_name, None)
            raise
        finally:
            try:
                sys.path.remove(str(path.parent))
            except ValueError:
                pass
        return module
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    specs: list[Any] = []
    try:  # finding a submodule imports its parents, which may fail as any import does
        _exec(lambda: specs.append(importlib.util.find_spec(target)), target, _NOT_FOUND)
    except _NOT_FOUND:
        specs = [None]
    found = specs[0] if specs else None
    if found is None:
        raise UsageError(
            f"module not found: {target!r} (not importable from {Path.cwd()}); give "
            f"path/to/module.py[:name] or package.module[:name]"
        )
    result: list[ModuleType] = []
    _exec(lambda: result.append(importlib.import_module(target)), target)
    return result[0]


_NOT_FOUND = (ImportError, ValueError)  # what find_spec raises for a name it cannot find


def _exec(run: Any, target: str, passing: tuple[type[BaseException], ...] = ()) -> None:
    try:
        run()
    except WorkbenchError:
        raise
    except passing:
        raise
    except SyntaxError as e:
        where = f"{e.filename}:{e.lineno}: " if e.filename else ""
        raise UsageError(f"{where}syntax error in {target}: {e.msg}") from e
    except Exception as e:
        where = _user_location(e) or target
        raise UsageError(f"{where}: importing {target} failed: {type(e).__name__}: {e}") from e


def find_pipelines(module: ModuleType) -> dict[str, Any]:
    """Pipelines defined in a module, by attribute name (imported ones only if none is)."""
    found = {k: v for k, v in vars(module).items() if not k.startswith("_") and is_pipeline(v)}
    own = {
        k: v
        for k, v in found.items()
        if getattr(getattr(v, "fn", None), "__module__", None) == module.__name__
        or getattr(getattr(v, "pipeline_func", None), "__module__", None) == module.__name__
    }
    return own or found


def load_pipeline(ref: str) -> Any:
    """The pipeline object named by ``ref``."""
    target, name = split_ref(ref)
    module = import_module(target)
    pipelines = find_pipelines(module)
    if name is not None:
        if name in pipelines:
            return pipelines[name]
        by_pipeline_name = [p for p in pipelines.values() if pipeline_name(p) == name]
        if len(by_pipeline_name) == 1:
            return by_pipeline_name[0]
        obj = getattr(module, name, None)
        if obj is None:
            known = ", ".join(sorted(pipelines)) or "none"
            raise UsageError(f"{target} has no pipeline named {name!r} (pipelines: {known})")
        raise UsageError(
            f"{target}:{name} is not a pipeline; decorate it with @pipeline "
            f"(pipelines here: {', '.join(sorted(pipelines)) or 'none'})"
        )
    if not pipelines:
        raise UsageError(
            f"no @pipeline in {target}: decorate a function with @pipeline, or name one "
            f"with {target}:NAME"
        )
    if len(pipelines) > 1:
        outer = _outermost(pipelines)
        if len(outer) == 1:  # the others are only used inside it
            return pipelines[outer[0]]
        names = ", ".join(sorted(pipelines))
        first = sorted(outer or pipelines)[0]
        raise UsageError(f"{target} has several pipelines ({names}); choose one: {target}:{first}")
    return next(iter(pipelines.values()))


def _outermost(pipelines: dict[str, Any]) -> list[str]:
    """The pipelines no other pipeline of the module uses as a step."""
    used: set[str] = set()
    for obj in pipelines.values():
        try:
            spec = kfp_component(obj).pipeline_spec
        except Exception:  # it does not trace: compiling it reports why
            continue
        used.update(key.removeprefix("comp-") for key in spec.components)
    return sorted(k for k, p in pipelines.items() if pipeline_name(p) not in used)
