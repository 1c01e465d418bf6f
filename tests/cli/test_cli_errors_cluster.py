"""A command sent to a cluster (--namespace) with no cluster configured: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [["endpoints", "list"], ["endpoints", "show", "ep"], ["endpoints", "promote", "ep"]],
    ids=" ".join,
)
def test_no_kube_config_is_one_line_that_says_how_to_get_one(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("kubernetes")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    r = runner.invoke(app, [*args, "--namespace", "team-a", "--json"])
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Kubernetes cluster"), r.stderr
    assert "KUBECONFIG" in lines[0]
    assert r.stdout == ""
