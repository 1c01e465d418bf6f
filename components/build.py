"""Compile the prebuilt launcher components to KFP component YAML.

Each ``components/src/NAME.py`` defines ``COMPONENT`` (a workbench step or a KFP
component); this writes ``components/NAME.yaml``, which people who write plain
KFP load with ``kfp.components.load_component_from_file``. Run it after
changing a launcher; ``--check`` (used by the tests) fails when a YAML is stale.

    python components/build.py          # regenerate
    python components/build.py --check  # exit 1 if any YAML differs
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def compile_component(src: Path) -> str:
    """The component YAML for one ``components/src/*.py``."""
    from kfp import compiler

    spec = importlib.util.spec_from_file_location(f"_component_src_{src.stem}", src)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    component = module.COMPONENT
    component = getattr(component, "component", component)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c.yaml"
        compiler.Compiler().compile(component, str(out))
        return out.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a YAML is stale")
    args = parser.parse_args(argv)
    stale = []
    for src in sorted((HERE / "src").glob("*.py")):
        text = compile_component(src)
        target = HERE / f"{src.stem}.yaml"
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print(f"stale: {', '.join(stale)}; run `python components/build.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
