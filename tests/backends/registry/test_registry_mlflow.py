"""The registry backend on a real SQLite MLflow: versions, aliases, tags, URIs, the local layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench_dsl.backends.registry import AliasRefused, open_registry, ui_command
from workbench_dsl.paths import local_root


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not path.exists():
        open_registry(f"sqlite:///{path}").models()
    return path


@pytest.fixture
def registry(workbench_home: Path, mlflow_template: Path):  # type: ignore[no-untyped-def]
    shutil.copy(mlflow_template, workbench_home / "mlflow.db")
    return open_registry()


def _register(registry, name: str = "churn", **tags: str):  # type: ignore[no-untyped-def]
    from sklearn.dummy import DummyClassifier

    run = registry.log_evaluation(
        experiment="exp", run_name="evaluate", tags={}, params={"k": "1"}, metrics={"acc": 0.9}
    )
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    return registry.register(name=name, model=model, flavor="sklearn", run_id=run, tags=tags)


def test_local_registry_lives_under_the_local_root(registry, workbench_home: Path) -> None:  # type: ignore[no-untyped-def]
    v = _register(registry)
    assert registry.uri == f"sqlite:///{workbench_home / 'mlflow.db'}"
    storage = registry.download_uri("churn", v.version)
    assert storage.startswith((workbench_home / "mlartifacts").as_uri())
    assert not Path("mlruns").exists()  # nothing lands in the cwd
    assert ui_command(local_root()) == (
        f"mlflow ui --backend-store-uri sqlite:///{workbench_home / 'mlflow.db'} "
        f"--default-artifact-root {workbench_home / 'mlartifacts'} --host 127.0.0.1 --port 5000"
    )


def test_versions_aliases_and_resolution(registry) -> None:  # type: ignore[no-untyped-def]
    first = _register(registry, run="a")
    second = _register(registry, run="b")
    assert (first.version, second.version) == ("1", "2")
    registry.set_alias("churn", "production", "1")
    registry.set_alias("churn", "staging", "2")
    assert registry.resolve("models:/churn@production").version == "1"
    assert registry.resolve("models:/churn/2").tags == {"run": "b"}
    assert [v.version for v in registry.versions("churn")] == ["2", "1"]
    assert registry.versions("churn")[1].metrics == {"acc": 0.9}
    (summary,) = registry.models()
    assert summary.to_json() | {"updated_at": 0} == {
        "name": "churn",
        "latest_version": "2",
        "aliases": {"production": "1", "staging": "2"},
        "versions": 2,
        "updated_at": 0,
    }
    with pytest.raises(ValueError, match="names no version"):
        registry.resolve("models:/churn")


def test_find_versions_by_tag(registry) -> None:  # type: ignore[no-untyped-def]
    _register(registry, "a", state="x")
    _register(registry, "b", state="y")
    _register(registry, "c", state="x")
    assert [(v.name, v.version) for v in registry.find_versions("state", "x")] == [
        ("a", "1"),
        ("c", "1"),
    ]


def test_a_rejected_version_never_receives_an_alias(registry) -> None:  # type: ignore[no-untyped-def]
    _register(registry)
    registry.set_tags("churn", "1", {"workbench.approval": "rejected"})
    with pytest.raises(AliasRefused, match="churn version 1 was rejected"):
        registry.set_alias("churn", "staging", "1")


@pytest.mark.slow
def test_processes_creating_a_new_registry_at_once_do_not_collide(tmp_path: Path) -> None:
    # MLflow migrates a new SQLite file on first use; concurrent first uses used to fail
    # with "Online migration expected to match one row".
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from workbench_dsl.backends.registry import open_registry\n"
        "open_registry(sys.argv[1]).models()\n"
    )
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, uri], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
