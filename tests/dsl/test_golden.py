"""Golden files: every example and test pipeline compiles to a checked-in YAML, compared in full.

Only the KFP SDK version is stripped before comparing. Regenerate on purpose with
``WORKBENCH_REGEN_GOLDEN=1 make golden`` (refused under CI).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from workbench_dsl.compile.compiler import compile_to_text
from workbench_dsl.compile.loader import find_pipelines, import_module

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
#: golden folder -> the modules compiled into it
FOLDERS = {
    "pipelines": REPO / "pipelines",
    "recipes": REPO / "recipes",
    "dsl": REPO / "tests" / "dsl" / "pipelines",
}
SOURCES = [p for folder in FOLDERS.values() for p in sorted(folder.glob("*.py"))]
_VERSION = [
    (re.compile(r"kfp==\d+\.\d+\.\d+\S*?(?=['\"\s\\])"), "kfp==<SDK>"),
    (re.compile(r"sdkVersion: kfp-\S+"), "sdkVersion: kfp-<SDK>"),
]


def strip_sdk_version(text: str) -> str:
    for pattern, repl in _VERSION:
        text = pattern.sub(repl, text)
    return text


def _regen() -> bool:
    if os.environ.get("WORKBENCH_REGEN_GOLDEN") != "1":
        return False
    if os.environ.get("CI"):
        pytest.fail("golden files are never regenerated in CI")
    return True


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_golden(source: Path) -> None:
    module = import_module(str(source))
    pipelines = find_pipelines(module)
    assert pipelines, f"{source} defines no pipeline"
    folder = GOLDEN / next(k for k, v in FOLDERS.items() if source.parent == v)
    for attr, obj in sorted(pipelines.items()):
        name = source.stem if len(pipelines) == 1 else f"{source.stem}.{attr}"
        golden = folder / f"{name}.yaml"
        text = compile_to_text(obj)
        if _regen():
            folder.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
            continue
        assert golden.exists(), f"no golden file {golden}; run `make golden` on purpose"
        expected = strip_sdk_version(golden.read_text(encoding="utf-8"))
        assert strip_sdk_version(text) == expected, (
            f"{source.name}:{attr} compiles differently from {golden.relative_to(REPO)}; "
            f"if the change is intended, run `make golden` and review the diff"
        )


def test_strip_sdk_version_leaves_everything_else() -> None:
    text = "x: 'kfp==2.17.0' '--no-deps'\nsdkVersion: kfp-2.17.0\nkfp==2.17.0 other"
    assert strip_sdk_version(text) == (
        "x: 'kfp==<SDK>' '--no-deps'\nsdkVersion: kfp-<SDK>\nkfp==<SDK> other"
    )
