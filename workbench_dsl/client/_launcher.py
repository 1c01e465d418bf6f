"""Which workbench step a compiled task is: the launcher call inside its embedded program.

``@train``, ``@sweep``, ``@register`` and ``@serve`` compile to a lightweight
component whose wrapper ends in
``return launch(<user source>, <function name>, <config json>, _workbench_arguments)``
after ``from workbench_dsl.runtime.<kind> import launch`` (see
``dsl/_launcher.py``). Reading that call back (with ``ast``, never by running
the program) tells the step's kind, the user's function and its settings.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

KINDS = ("train", "sweep", "register", "serve")


@dataclass(frozen=True)
class LauncherCall:
    """A launcher step's kind, the user's function source and name, and its settings."""

    kind: str
    source: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)


def launcher_call(program: str | None) -> LauncherCall | None:
    """The launcher call in a component's embedded program, or None for any other program."""
    if not program or "workbench_dsl.runtime." not in program:
        return None
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return None
    kind = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "workbench_dsl.runtime."
        ):
            candidate = (node.module or "").rsplit(".", 1)[-1]
            if candidate in KINDS and any(a.name == "launch" for a in node.names):
                kind = candidate
        if (
            kind
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "launch"
            and len(node.args) == 4
        ):
            try:
                source, name, config = (ast.literal_eval(a) for a in node.args[:3])
            except ValueError:
                return None
            if isinstance(source, str) and isinstance(name, str) and isinstance(config, str):
                return LauncherCall(kind, source, name, json.loads(config))
    return None


def program_of(executor: dict[str, Any]) -> str | None:
    """The embedded Python source of a lightweight component's executor, if it has one."""
    from workbench_dsl.engine.lightweight import plan_executor

    plan = plan_executor(executor)
    return plan.source if plan.kind == "python" else None
