"""`workbench components list | show | path`: where the prebuilt KFP components are, for plain KFP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from workbench_dsl.cli.app import app

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (REPO / "components").glob("*.yaml"))


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_names_every_shipped_component_with_a_loadable_path() -> None:
    from kfp import components

    code, out, _ = invoke("components", "list", "--json")
    assert code == 0
    listed = {c["name"]: c for c in json.loads(out)}
    assert sorted(listed) == SHIPPED and {"train", "sweep", "register", "deploy"} <= set(listed)
    for name, c in listed.items():
        # in a checkout they are the source-of-truth files themselves
        assert Path(c["path"]) == REPO / "components" / f"{name}.yaml"
        assert c["description"]
        assert components.load_component_from_file(c["path"]).name == c["kfp_name"]


def test_list_prints_one_line_each_and_the_folder() -> None:
    code, out, _ = invoke("components", "list")
    assert code == 0
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines[: len(SHIPPED)]] == SHIPPED
    assert f"in {REPO / 'components'}" in out


def test_show_gives_inputs_outputs_and_the_load_line() -> None:
    code, out, _ = invoke("components", "show", "train", "--json")
    assert code == 0
    info = json.loads(out)
    inputs = {p["name"]: p for p in info["inputs"]}
    assert inputs["function_name"]["optional"] is False
    assert inputs["nodes"] == {"name": "nodes", "type": "integer", "default": 1, "optional": True}
    assert inputs["data"]["type"] == "system.Dataset"
    assert {p["name"] for p in info["outputs"]} >= {"model"}

    code, out, _ = invoke("components", "show", "train.yaml")
    assert code == 0
    assert "  nodes " in out and "integer, default 1" in out
    assert (
        f"components.load_component_from_file({str(REPO / 'components' / 'train.yaml')!r})" in out
    )


def test_path_prints_only_the_path_for_scripts() -> None:
    code, out, _ = invoke("components", "path", "sweep")
    assert code == 0 and out == f"{REPO / 'components' / 'sweep.yaml'}\n"
    code, out, _ = invoke("components", "path")
    assert code == 0 and out == f"{REPO / 'components'}\n"


def test_unknown_component_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "components", "show", "trian"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: unknown component 'trian' (known: {', '.join(SHIPPED)}); "
        "`workbench components list` shows them"
    ]
