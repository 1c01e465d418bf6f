"""The layering of DESIGN.md, enforced: imports only go down.

Layers, top to bottom (a module may import its own layer's package and any
lower layer, never a higher one; ``engine`` and ``compile`` never import each
other):

    cli > ui > schedule > (local_run API) > client | replay > dsl > compile | engine > runtime
        > backends > base

(``client`` and ``replay`` read past runs: they sit on the engine and the
runtime, and never import the DSL or the compiler.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "workbench_dsl"

# package -> packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "backends": {"dsl", "engine", "compile", "runtime", "cli", "ui", "schedule"},
    "runtime": {"dsl", "engine", "compile", "cli", "ui", "schedule"},
    "engine": {"dsl", "compile", "cli", "ui", "schedule"},
    "compile": {"dsl", "engine", "cli", "ui", "schedule", "runtime"},
    "dsl": {"cli", "ui", "schedule"},
    "schedule": {"cli", "ui"},
    "ui": {"cli"},
    "client": {"dsl", "compile", "cli", "ui", "schedule", "replay"},
    "replay": {"dsl", "compile", "cli", "ui", "schedule"},
    # reads the run store and the endpoints for Prometheus: beside the ui, below the cli
    "telemetry": {"dsl", "compile", "cli", "ui", "schedule"},
}
BASE_MODULES = {
    "_env",
    "_graph",
    "_procs",
    "_detach",
    "_sqlite",
    "errors",
    "paths",
    "config",
    "compute",
    "_settings",
    "_version",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                rel = path.relative_to(PKG).parts[: -node.level]
                base = ".".join(("workbench_dsl", *rel))
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "workbench_dsl" or len(parts) < 2:
        return None
    return parts[1]


def test_imports_only_go_down() -> None:
    problems = []
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((PKG / layer).rglob("*.py")):
            for module in _imports(path):
                target = _layer_of(module)
                if target in forbidden:
                    problems.append(f"{path.relative_to(PKG.parent)} imports {module}")
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_base_modules_import_no_layer() -> None:
    layers = set(FORBIDDEN) | {"cli"}
    for name in BASE_MODULES:
        path = PKG / f"{name}.py"
        for module in _imports(path):
            assert _layer_of(module) not in layers, f"{name}.py imports {module}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    # The check must be able to fail: a synthetic engine module importing the DSL.
    fake = PKG / "engine" / "_layering_probe_tmp.py"
    fake.write_text("from workbench_dsl.dsl import step\n", encoding="utf-8")
    try:
        found = {_layer_of(m) for m in _imports(fake)}
        assert "dsl" in found & FORBIDDEN["engine"]
    finally:
        fake.unlink()
