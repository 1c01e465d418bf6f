"""Recognize what an executor runs: a KFP lightweight Python component or a host command.

KFP compiles ``@dsl.component`` functions to (``kfp/dsl/component_factory.py``)::

    sh -c '<pip install ...> && "$0" "$@"'              # optional install prefix
    sh -ec 'program_path=$(mktemp -d)
            printf "%s" "$0" > "$program_path/ephemeral_component.py"
            _KFP_RUNTIME=true python3 -m kfp.dsl.executor_main \\
                --component_module_path "$program_path/ephemeral_component.py" "$@"'
    <embedded source>
    --executor_input {{$}} --function_to_execute NAME

The variants (``packages_to_install``, ``pip_index_urls``, ``use_venv``,
``pip_trusted_hosts``, embedded artifacts and notebooks — which only change the
prefix or the embedded source —, and the module paths of older 2.x SDKs) all
keep that shape, so recognition keys on it rather than on exact text. Such a
component runs in a warm worker through ``kfp.dsl.executor_main``, exactly as
the pod would. A containerized Python component (``python3 -m
kfp.dsl.executor_main`` with its module inside the image) cannot run here. Any
other executor is a container component whose command runs on the host.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench_dsl.engine.requirements import (
    RequirementError,
    Requirements,
    split_install_prefix,
)

_EXECUTOR_MAIN = re.compile(r"\bkfp\.(?:dsl|components|v2\.components)\.executor_main\b")
_PROGRAM_FILE = re.compile(r"/([A-Za-z_]\w*)\.py\b")
_SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash"}

Kind = Literal["python", "container", "unsupported"]


@dataclass(frozen=True)
class Plan:
    """How to run one executor (computed once per executor, reused by every attempt).

    Attributes:
        kind: ``python`` (warm worker), ``container`` (host process) or
            ``unsupported`` (``error`` says why).
        image: The container image the spec names.
        requirements: Packages its install prefix asks for (kfp removed).
        argv: For ``container``: command + args after the install prefix,
            placeholders still unresolved.
        source: For ``python``: the embedded module source.
        module: For ``python``: the module's file name without ``.py``.
        function: For ``python``: ``--function_to_execute``.
        executor_input_arg: For ``python``: the argument given to
            ``--executor_input`` (``{{$}}`` in every SDK so far).
        error: For ``unsupported``: one line for a person.
    """

    kind: Kind
    image: str
    requirements: Requirements = field(default_factory=Requirements)
    argv: tuple[str, ...] = ()
    source: str | None = None
    module: str = "ephemeral_component"
    function: str | None = None
    executor_input_arg: str = "{{$}}"
    error: str | None = None


def plan_executor(executor: dict[str, Any]) -> Plan:
    """Decide how to run ``deploymentSpec.executors[label]``."""
    container = executor.get("container")
    if not isinstance(container, dict):
        kinds = ", ".join(sorted(executor)) or "nothing"
        return Plan("unsupported", "", error=f"the executor holds {kinds}, not a container")
    image = str(container.get("image", ""))
    elements = [str(e) for e in (container.get("command") or [])]
    elements += [str(e) for e in (container.get("args") or [])]
    try:
        reqs, rest = split_install_prefix(elements)
    except RequirementError as exc:  # pip install -r ..., and the like
        return Plan("unsupported", image, error=str(exc))
    except ValueError as exc:  # unbalanced quotes in the install script
        return Plan("unsupported", image, error=f"cannot read the install command: {exc}")
    if not rest:
        return Plan(
            "unsupported",
            image,
            error=(
                f"the component has no command: it runs the entrypoint of image {image}, "
                "which cannot run locally"
            ),
        )
    if not container.get("command") and "{{$" in rest[0]:
        # Args alone, the first one a value: the image's ENTRYPOINT is the program.
        # (Args that start with a program run as the command, as in an image without one.)
        return Plan(
            "unsupported",
            image,
            error=(
                f"the component has no command, and its first argument is a value: it runs "
                f"the entrypoint of image {image}, which is not used locally; give it a command "
                "or run the pipeline on a cluster"
            ),
        )
    if any(_EXECUTOR_MAIN.search(e) for e in rest[:3]):
        return _python_plan(image, reqs, rest)
    return Plan("container", image, requirements=reqs, argv=tuple(rest))


def _python_plan(image: str, reqs: Requirements, rest: list[str]) -> Plan:
    embedded = len(rest) >= 4 and rest[0] in _SHELLS and rest[1] in ("-c", "-ec", "-e")
    if embedded and '"$0"' in rest[2] and "--component_module_path" in rest[2]:
        m = _PROGRAM_FILE.search(rest[2])
        module = m.group(1) if m else "ephemeral_component"
        return _with_args(
            Plan("python", image, requirements=reqs, source=rest[3], module=module), rest[4:]
        )
    # python3 -m kfp.dsl.executor_main [--component_module_path FILE] ...
    path = _flag(rest, "--component_module_path")
    if path and "{{$" not in path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        module = os.path.basename(path)[: -len(".py")] if path.endswith(".py") else "component"
        return _with_args(
            Plan("python", image, requirements=reqs, source=source, module=module), rest
        )
    where = f"module {path}" if path else "kfp_config.ini"
    return Plan(
        "unsupported",
        image,
        requirements=reqs,
        error=(
            f"containerized Python component: its code ({where}) lives only in image {image}, "
            "which is not used locally; use a lightweight @dsl.component (embedded source) "
            "or run the pipeline on a cluster"
        ),
    )


def _with_args(plan: Plan, args: list[str]) -> Plan:
    function = _flag(args, "--function_to_execute")
    if not function:
        return Plan(
            "unsupported",
            plan.image,
            error="the Python component names no --function_to_execute",
        )
    executor_input = _flag(args, "--executor_input") or "{{$}}"
    return Plan(
        "python",
        plan.image,
        requirements=plan.requirements,
        source=plan.source,
        module=plan.module,
        function=function,
        executor_input_arg=executor_input,
    )


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None
