"""The local root is private: created 0700, owner-only inside, repaired with a notice."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workbench_dsl import paths
from workbench_dsl.paths import LocalRoot


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_a_new_root_is_0700_and_files_made_after_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0o022)
    try:
        root = LocalRoot(tmp_path / "project" / ".workbench").ensure()
        assert _mode(root.root) == 0o700
        (root.root / "runs.db").write_bytes(b"x")  # as any library in this process would
        (root.root / "logs").mkdir()
        assert (_mode(root.root / "runs.db"), _mode(root.root / "logs")) == (0o600, 0o700)
    finally:
        os.umask(old)


def test_an_open_root_is_repaired_at_start_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / "artifacts" / "ab" / "deep").mkdir(parents=True)
    (home / "runs.db").write_bytes(b"x")
    (home / "artifacts" / "ab" / "deep" / "model.pkl").write_bytes(b"x")
    readonly = home / "artifacts" / "ab" / "stored.csv"
    readonly.write_bytes(b"x")
    for p in (
        home,
        home / "artifacts",
        home / "artifacts" / "ab",
        home / "artifacts" / "ab" / "deep",
    ):
        os.chmod(p, 0o755)
    os.chmod(home / "runs.db", 0o644)
    os.chmod(home / "artifacts" / "ab" / "deep" / "model.pkl", 0o666)
    os.chmod(readonly, 0o444)
    os.symlink("/etc/passwd", home / "link")
    paths._checked.discard(home)

    LocalRoot(home).ensure()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "made 7 path(s) owner-only" in err
    assert _mode(home) == 0o700 and _mode(home / "runs.db") == 0o600
    assert _mode(home / "artifacts" / "ab" / "deep" / "model.pkl") == 0o600
    assert _mode(readonly) == 0o400  # read-only stays read-only
    assert _mode(Path("/etc/passwd")) & 0o004  # a link's target is never touched
    assert paths.exposed(home) == []
    # Checked once per process: no second notice.
    LocalRoot(home).ensure()
    assert capsys.readouterr().err == ""
