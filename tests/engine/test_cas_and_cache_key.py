"""The content-addressed artifact store and the cache key."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from workbench_dsl.engine.cache import task_key
from workbench_dsl.engine.cas import ArtifactStore, digest, remove


def test_file_digest_is_sha256sum(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello")
    assert digest(f) == (hashlib.sha256(b"hello").hexdigest(), 5)


def test_tree_digest_depends_on_content_and_names_not_location(tmp_path: Path) -> None:
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "x.txt").write_text("1")
    (a / "sub" / "y.txt").write_text("2")
    b = tmp_path / "elsewhere" / "b"
    b.parent.mkdir()
    os.rename(a, b)
    da, size = digest(b)
    assert size == 2
    (b / "sub" / "y.txt").write_text("3")
    assert digest(b)[0] != da
    (b / "sub" / "y.txt").write_text("2")
    assert digest(b)[0] == da
    (b / "z").mkdir()  # an empty directory counts
    assert digest(b)[0] != da


def test_ingest_moves_dedupes_and_makes_read_only(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    src = tmp_path / "work" / "model"
    src.parent.mkdir()
    src.write_text("weights")
    s1 = store.ingest(src, "model", move=True)
    assert not src.exists()
    stored = Path(s1.uri)
    assert stored.read_text() == "weights"
    assert stored.name == "model"
    assert s1.sha256 == hashlib.sha256(b"weights").hexdigest()
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o222
    again = tmp_path / "other"
    again.write_text("weights")
    s2 = store.ingest(again, "other-name", move=False)
    assert s2.uri == s1.uri  # one copy per content
    assert again.exists()
    assert store.verify(s1.uri, s1.sha256, s1.size)


def test_verify_notices_a_changed_or_missing_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    d = tmp_path / "ds"
    d.mkdir()
    (d / "part-0").write_text("rows")
    s = store.ingest(d, "ds", move=True)
    assert store.verify(s.uri, s.sha256, s.size)
    part = Path(s.uri) / "part-0"
    os.chmod(part, 0o644)
    part.write_text("ROWS")
    assert not ArtifactStore(tmp_path / "artifacts").verify(s.uri, s.sha256, s.size)
    remove(Path(s.uri))
    assert not store.verify(s.uri, s.sha256, s.size)


def _key(params: dict, arts: dict, image: str = "python:3.11") -> str:
    comp = {"inputDefinitions": {"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}}}
    executor = {
        "container": {
            "image": image,
            "command": ["python"],
            "args": ["-c", "pass"],
            "resources": {"cpuLimit": 1.0},
        }
    }
    return task_key(comp, executor, {}, params, arts)


def _art(sha: str, uri: str, name: str = "data") -> dict:
    return {
        "name": name,
        "uri": uri,
        "sha256": sha,
        "type": {"schemaTitle": "system.Dataset"},
        "metadata": {"rows": 3},
    }


def test_cache_key_uses_content_digests_never_names_or_uris() -> None:
    k1 = _key({"x": 1}, {"data": [_art("aa", "/store/aa/data", "data")]})
    k2 = _key({"x": 1}, {"data": [_art("aa", "/elsewhere/renamed", "renamed")]})
    assert k1 == k2
    assert _key({"x": 1}, {"data": [_art("bb", "/store/aa/data")]}) != k1
    assert _key({"x": 2}, {"data": [_art("aa", "/store/aa/data")]}) != k1
    assert _key({"x": 1}, {"data": [_art("aa", "/store/aa/data")]}, image="python:3.12") != k1
    changed_meta = _art("aa", "/store/aa/data")
    changed_meta["metadata"] = {"rows": 4}
    assert _key({"x": 1}, {"data": [changed_meta]}) != k1


def test_cache_key_ignores_resources() -> None:
    comp: dict = {}
    a = task_key(comp, {"container": {"image": "i", "resources": {"cpuLimit": 1}}}, {}, {}, {})
    b = task_key(comp, {"container": {"image": "i", "resources": {"cpuLimit": 8}}}, {}, {}, {})
    assert a == b


def test_a_runs_key_cache_gives_exactly_task_keys() -> None:
    from workbench_dsl.engine.cache import KeyCache

    comp = {
        "inputDefinitions": {"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}},
        "outputDefinitions": {
            "artifacts": {"out": {"artifactType": {"schemaTitle": "system.Dataset"}}}
        },
        "executorLabel": "exec-a",
    }
    executors = [
        {
            "container": {
                "image": "i",
                "command": ["sh", "-c", 'é "$0"'],
                "resources": {"cpuLimit": 2},
            }
        },
        {"container": {}},
        {"importer": {"artifactUri": {"constant": "gs://b/x"}}},
    ]
    art = {
        "uri": "/a",
        "sha256": "ab",
        "type": {"schemaTitle": "system.Dataset"},
        "metadata": {"k": 1},
    }
    keys = KeyCache()
    for executor in executors:
        for env, params, arts in [
            ({}, {}, {}),
            ({"E": "1"}, {"x": 3, "s": "ü", "l": [1, {"b": None, "a": 2.5}]}, {"d": [art]}),
            ({}, {"p": object()}, {"d": [{"uri": "gs://r/x"}, {"absent": True}]}),
        ]:
            for _ in range(2):  # the second from what the first encoded
                assert keys.key(comp, executor, env, params, arts) == task_key(
                    comp, executor, env, params, arts
                )
