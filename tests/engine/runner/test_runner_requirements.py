"""Package requirements: parsed from the compiled command, layered per attempt, never in the host env."""

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from kfp import dsl
from runner_helpers import compile_executor, make_spec

from workbench_dsl.engine.lightweight import plan_executor
from workbench_dsl.engine.requirements import Requirements, split_install_prefix, unsatisfied
from workbench_dsl.engine.runner import TaskRunner
from workbench_dsl.paths import LocalRoot

warnings.filterwarnings("ignore", message="The default base_image")
pytestmark = pytest.mark.filterwarnings("ignore:The default base_image")


def _plan(component, tmp_path: Path):  # type: ignore[no-untyped-def]
    executor, _ = compile_executor(component, tmp_path)
    return plan_executor(executor)


def test_install_prefix_variants_are_parsed(tmp_path: Path) -> None:
    @dsl.component(
        packages_to_install=["packaging>=20", 'tomli>=1; python_version < "3.0"', "kfp==2.1.3"],
        pip_index_urls=["https://mirror.example/simple", "https://extra.example/simple"],
        pip_trusted_hosts=["mirror.example"],
        use_venv=True,
    )
    def venv_comp(x: int) -> int:
        return x

    plan = _plan(venv_comp, tmp_path)
    assert plan.kind == "python"
    assert plan.function == "venv_comp"
    assert plan.module == "ephemeral_component"
    assert plan.source is not None and "def venv_comp(x: int) -> int:" in plan.source
    # kfp is always skipped; a marker that does not apply here drops its line.
    assert plan.requirements == Requirements(
        packages=("packaging>=20",),
        index_urls=("https://mirror.example/simple", "https://extra.example/simple"),
        trusted_hosts=("mirror.example",),
    )


def test_kfp_v1_install_prefix() -> None:
    script = (
        "(PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location "
        "'pyarrow==0.17.1' || PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet "
        '--no-warn-script-location \'pyarrow==0.17.1\' --user) && "$0" "$@"'
    )
    reqs, rest = split_install_prefix(["sh", "-c", script, "python3", "-u", "-c", "print(1)"])
    assert reqs.packages == ("pyarrow==0.17.1",)
    assert rest == ["python3", "-u", "-c", "print(1)"]


def test_containerized_python_component_is_refused() -> None:
    plan = plan_executor(
        {
            "container": {
                "image": "registry.example/my-comp:v1",
                "command": ["python3", "-m", "kfp.dsl.executor_main"],
                "args": ["--executor_input", "{{$}}", "--function_to_execute", "concat_message"],
            }
        }
    )
    assert plan.kind == "unsupported"
    assert plan.error == (
        "containerized Python component: its code (kfp_config.ini) lives only in image "
        "registry.example/my-comp:v1, which is not used locally; use a lightweight "
        "@dsl.component (embedded source) or run the pipeline on a cluster"
    )


def test_embedded_artifact_component_is_lightweight(tmp_path: Path) -> None:
    asset = tmp_path / "asset.txt"
    asset.write_text("embedded!")

    @dsl.component(embedded_artifact_path=str(asset))
    def reads_asset(asset: dsl.EmbeddedInput[dsl.Dataset]) -> str:
        with open(asset.path) as f:
            return f.read()

    plan = _plan(reads_asset, tmp_path)
    assert (plan.kind, plan.function) == ("python", "reads_asset")
    assert plan.source is not None and "__KFP_EMBEDDED_ARCHIVE_B64" in plan.source
    with TaskRunner(LocalRoot(tmp_path / "root")) as runner:
        outcome = runner.submit(make_spec(reads_asset, tmp_path)).result(60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"] == {"Output": "embedded!"}


def test_already_satisfied_requirement_installs_nothing(tmp_path: Path) -> None:
    @dsl.component(packages_to_install=["packaging", "PyYAML>=5"])
    def uses_packaging(v: str) -> bool:
        from packaging.version import Version

        return Version(v) > Version("1.0")

    root = LocalRoot(tmp_path / "root")
    assert unsatisfied(("packaging", "PyYAML>=5")) == ()
    with TaskRunner(root) as runner:
        outcome = runner.submit(make_spec(uses_packaging, tmp_path, params={"v": "2.0"})).result(60)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert outcome.executor_output["parameterValues"] == {"Output": True}
    assert not root.envs.exists()


def _venv_dists() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_unsatisfiable_requirement_fails_before_the_task(tmp_path: Path) -> None:
    @dsl.component(packages_to_install=["workbench-no-such-package-xyz==1.0"])
    def needs_missing() -> str:
        return "never"

    root = LocalRoot(tmp_path / "root")
    before = _venv_dists()
    with TaskRunner(root) as runner:
        spec = make_spec(needs_missing, tmp_path)
        outcome = runner.submit(spec).result(120)
    assert outcome.status == "FAILED"
    assert outcome.exit_code is None  # the task never started
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error.startswith("cannot install workbench-no-such-package-xyz==1.0: ")
    assert "workbench-no-such-package-xyz" in outcome.error.split(": ", 1)[1]
    assert [p for p in root.envs.iterdir() if p.is_dir()] == []
    assert _venv_dists() == before


def _index_reachable(tmp_path: Path) -> bool:
    probe = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(tmp_path / "dl"),
            "inflection==0.5.1",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.slow
def test_missing_requirement_is_installed_into_a_shared_layer(tmp_path: Path) -> None:
    if importlib.util.find_spec("inflection") is not None:
        pytest.skip("inflection is installed in this environment")
    if not _index_reachable(tmp_path):
        pytest.skip("the package index is unreachable")

    @dsl.component(packages_to_install=["inflection==0.5.1"])
    def camel(word: str) -> str:
        import inflection

        return inflection.camelize(word)

    root = LocalRoot(tmp_path / "root")
    before = _venv_dists()
    with TaskRunner(root) as runner:
        specs = [
            make_spec(camel, tmp_path, params={"word": f"a_b{i}"}, task=f"c{i}") for i in range(3)
        ]
        outcomes = [f.result(180) for f in [runner.submit(s) for s in specs]]
        assert [o.status for o in outcomes] == ["SUCCEEDED"] * 3, [o.error for o in outcomes]
        assert [o.executor_output["parameterValues"]["Output"] for o in outcomes] == [
            "AB0",
            "AB1",
            "AB2",
        ]
        layers = [p for p in root.envs.iterdir() if p.is_dir()]
        assert len(layers) == 1 and (layers[0] / "inflection.py").exists()
        installs = sum(s.log_path.read_text().count("[workbench] installing") for s in specs)
        assert installs == 1  # concurrent attempts installed once
        # A later attempt reuses the layer without pip.
        again = runner.submit(make_spec(camel, tmp_path, params={"word": "x_y"}, task="d")).result(
            60
        )
        assert again.executor_output["parameterValues"]["Output"] == "XY"
    assert importlib.util.find_spec("inflection") is None
    assert _venv_dists() == before


def test_older_sdk_forms_are_recognized() -> None:
    # KFP 2.0's executor module and no `_KFP_RUNTIME`; the source is embedded the same way.
    script = (
        'program_path=$(mktemp -d)\nprintf "%s" "$0" > "$program_path/ephemeral_component.py"\n'
        "python3 -m kfp.components.executor_main --component_module_path "
        '"$program_path/ephemeral_component.py" "$@"\n'
    )
    plan = plan_executor(
        {
            "container": {
                "image": "python:3.7",
                "command": ["sh", "-ec", script, "def f():\n    return 1\n"],
                "args": ["--executor_input", "{{$}}", "--function_to_execute", "f"],
            }
        }
    )
    assert (plan.kind, plan.function, plan.module) == ("python", "f", "ephemeral_component")


def test_requirements_file_in_the_install_command_is_refused() -> None:
    script = 'python3 -m pip install --quiet -r requirements.txt && "$0" "$@"'
    plan = plan_executor(
        {"container": {"image": "python:3.11", "command": ["sh", "-c", script, "echo"]}}
    )
    assert plan.kind == "unsupported"
    assert plan.error == (
        "'pip install -r ...' in the component's command is not supported locally: "
        "list the packages in packages_to_install"
    )
