"""Every bad input to `workbench compile`: one line naming the problem and the fix, exit 2,
no traceback, and no output file written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEADER = "from workbench_dsl import Dataset, Input, Model, Output, develop, pipeline\n"
STEPS = """
@develop
def load(rows: int, data: Output[Dataset]):
    pass

@develop
def fit(data: Input[Dataset], lr: float, model: Output[Model]):
    pass

@develop
def score(model: Input[Model]) -> float:
    return 1.0
"""


def compile_cli(tmp_path: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out.yaml"
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "compile", target, "-o", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], tmp_path: Path, *words: str
) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "out.yaml").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.yaml")]
    return lines[0]


def write(tmp_path: Path, body: str, name: str = "mod.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + STEPS + textwrap.dedent(body), encoding="utf-8")
    return path


def test_module_file_not_found(tmp_path: Path) -> None:
    proc = compile_cli(tmp_path, "nope/missing.py")
    assert_one_line_error(proc, tmp_path, "module not found", "missing.py", "module.py[:name]")


def test_dotted_module_not_found(tmp_path: Path) -> None:
    proc = compile_cli(tmp_path, "no_such_pkg.pipelines")
    assert_one_line_error(proc, tmp_path, "module not found", "no_such_pkg.pipelines")


def test_no_pipeline_in_module(tmp_path: Path) -> None:
    write(tmp_path, "")
    proc = compile_cli(tmp_path, "mod.py")
    assert_one_line_error(proc, tmp_path, "no @pipeline in mod.py", "@pipeline")


def test_several_pipelines_and_none_named(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        @pipeline
        def first(rows: int = 1):
            load(rows=rows)

        @pipeline
        def second(rows: int = 1):
            load(rows=rows)
        """,
    )
    proc = compile_cli(tmp_path, "mod.py")
    assert_one_line_error(proc, tmp_path, "several pipelines", "first", "second", "mod.py:first")
    # naming one works
    ok = compile_cli(tmp_path, "mod.py:second")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out.yaml").read_text().count("name: second") == 1


def test_named_pipeline_missing(tmp_path: Path) -> None:
    write(tmp_path, "\n@pipeline\ndef only(rows: int = 1):\n    load(rows=rows)\n")
    proc = compile_cli(tmp_path, "mod.py:other")
    assert_one_line_error(proc, tmp_path, "no pipeline named 'other'", "only")


def test_missing_argument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        @pipeline
        def p(rows: int = 1):
            d = load(rows=rows)
            fit(data=d.outputs["data"])
        """,
    )
    line = assert_one_line_error(
        compile_cli(tmp_path, "mod.py"), tmp_path, "fit() missing required argument 'lr'"
    )
    call_line = path.read_text().splitlines().index('    fit(data=d.outputs["data"])') + 1
    assert f"mod.py:{call_line}:" in line  # the line of the bad call


def test_unknown_argument(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        @pipeline
        def p(rows: int = 1):
            load(rows=rows, colour="red")
        """,
    )
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"),
        tmp_path,
        "load() got an unexpected keyword argument 'colour'",
    )


def test_type_mismatch_between_output_and_input(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        @pipeline
        def p(rows: int = 1):
            d = load(rows=rows)
            score(model=d.outputs["data"])
        """,
    )
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"),
        tmp_path,
        "score() argument 'model' expects Model",
        "load.outputs['data'] is Dataset",
    )


def test_constant_of_wrong_type(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        @pipeline
        def p():
            load(rows="many")
        """,
    )
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"), tmp_path, "load() argument 'rows' expects Integer"
    )


def test_cycle_made_with_after(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        @pipeline
        def p(rows: int = 1):
            a = load(rows=rows)
            b = load(rows=rows)
            c = load(rows=rows)
            b.after(a)
            c.after(b)
            a.after(c)
        """,
    )
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"), tmp_path, "cycle: load -> load-3 -> load-2 -> load"
    )


def test_unknown_profile(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        HEADER
        + textwrap.dedent(
            """
            @develop(profile="a100x8")
            def big(n: int) -> int:
                return n

            @pipeline
            def p(n: int = 1):
                big(n=n)
            """
        ),
        encoding="utf-8",
    )
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"),
        tmp_path,
        "unknown compute profile 'a100x8'",
        "known: cpu-large, cpu-small, gpu-1",
        "[profiles.a100x8]",
    )


def test_unknown_preset(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        HEADER
        + textwrap.dedent(
            """
            @develop(preset="jax")
            def step(n: int) -> int:
                return n

            @pipeline
            def p(n: int = 1):
                step(n=n)
            """
        ),
        encoding="utf-8",
    )
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"), tmp_path, "unknown preset 'jax'", "python, sklearn, torch"
    )


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[profiles.big]\ncpu = [1, 2]\n", ["workbench.toml:2", "profiles.big.cpu must be"]),
        (
            "[profiles.big]\ncpu = '2'\ngpus = 1\n",
            ["workbench.toml:3", "unknown key profiles.big.gpus"],
        ),
        (
            "[defaults]\nprofile = 'cpu-small'\n\n[clusterr]\nhost = 'x'\n",
            ["workbench.toml:4", "unknown section [clusterr]"],
        ),
        (
            "[presets.x]\nimage = 'a'\npackages = 'pandas'\n",
            ["workbench.toml:3", "presets.x.packages must be a list"],
        ),
        ("[profiles.big]\nmemory = '4 gigs'\n", ["workbench.toml:2", "not a memory amount"]),
        ("[profiles.big\ncpu = 1\n", ["workbench.toml:1", "invalid TOML"]),
    ],
    ids=["wrong-type", "unknown-key", "unknown-section", "bad-list", "bad-quantity", "syntax"],
)
def test_invalid_workbench_toml(tmp_path: Path, toml: str, words: list[str]) -> None:
    (tmp_path / "workbench.toml").write_text(toml, encoding="utf-8")
    write(tmp_path, "\n@pipeline\ndef p(rows: int = 1):\n    load(rows=rows)\n")
    assert_one_line_error(compile_cli(tmp_path, "mod.py"), tmp_path, *words)


def test_user_code_error_while_importing(tmp_path: Path) -> None:
    path = write(tmp_path, "\nraise RuntimeError('boom')\n")
    line_no = path.read_text().splitlines().index("raise RuntimeError('boom')") + 1
    assert_one_line_error(
        compile_cli(tmp_path, "mod.py"), tmp_path, f"mod.py:{line_no}:", "RuntimeError: boom"
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = compile_cli(tmp_path, "nope.py", "--debug")
    # --debug is a global option: it must come before the command
    assert proc.returncode == 2
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "--debug", "compile", "nope.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "UsageError" in proc.stderr
