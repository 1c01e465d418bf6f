"""`workbench runs replay` gives a task the stand-ins its run gave it: secrets, config maps,
field paths and volumes, never writing a secret's value anywhere."""

import os
import shutil
import warnings
from pathlib import Path

import pytest
from kfp import compiler, dsl, kubernetes

from workbench_dsl.engine import execute as engine
from workbench_dsl.engine import mounts
from workbench_dsl.engine.kube_objects import ObjectStore
from workbench_dsl.errors import UsageError
from workbench_dsl.paths import LocalRoot
from workbench_dsl.replay import execute, prepare

MNT = f"/tmp/wb-replay-standins-{os.getpid()}"


@dsl.component(base_image="python:3.11")
def reads() -> str:
    import os

    with open(f"{os.environ['MNT']}/token") as f:
        token = f.read()
    assert os.environ["PW"] == token
    with open(os.environ["WORKBENCH_STATUS_FILE"], "w") as f:
        f.write(f"logged in with {token}")
    return f"{os.environ['MODE']}:{len(token)}:{os.environ['POD'].endswith('-replay') or 'run'}"


@dsl.pipeline(name="replay-standins")
def standins() -> None:
    t = reads().set_env_variable("MNT", MNT).set_caching_options(False)
    kubernetes.use_secret_as_env(t, secret_name="db", secret_key_to_env={"token": "PW"})
    kubernetes.use_secret_as_volume(t, secret_name="db", mount_path=MNT)
    kubernetes.use_config_map_as_env(t, config_map_name="cfg", config_map_key_to_env={"m": "MODE"})
    kubernetes.use_field_path_as_env(t, env_name="POD", field_path="metadata.name")


def test_a_replayed_task_gets_its_secrets_config_maps_field_paths_and_volumes(
    workbench_home: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    why = mounts.available()
    if why is not None:
        pytest.skip(why)
    path = tmp_path / "p.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(standins, str(path))
    ObjectStore(workbench_home, "secret").set("db", {"token": "r3play-secret"})
    ObjectStore(workbench_home, "configmap").set("cfg", {"m": "fast"})
    root = LocalRoot(workbench_home)
    summary = engine.start(path.read_text(), {}, root=root)
    request.addfinalizer(lambda: shutil.rmtree(MNT, ignore_errors=True))
    assert summary.status == "SUCCEEDED", summary.failures

    plan = prepare(summary.run_id, "reads", root=root, scratch=tmp_path / "scratch")
    code, outputs = execute(plan)
    assert code == 0
    assert outputs["parameterValues"] == {"Output": "fast:13:True"}
    for f in (tmp_path / "scratch").rglob("*"):
        if f.is_file():
            assert b"r3play-secret" not in f.read_bytes(), f

    ObjectStore(workbench_home, "secret").remove("db")
    with pytest.raises(UsageError) as err:
        prepare(summary.run_id, "reads", root=root, scratch=tmp_path / "again")
    assert str(err.value) == (
        "cannot replay reads: secret 'db' is not set here: workbench secrets set db token=VALUE"
    )
