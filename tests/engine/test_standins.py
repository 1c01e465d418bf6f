"""Local stand-ins for what KFP users write: secrets, config maps, input artifacts; the preflight.

The pipelines are written as KFP users write them (``kfp.dsl`` + ``kfp.kubernetes``),
compiled by KFP's compiler and run through the real engine.
"""

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl, kubernetes
from typer.testing import CliRunner

from workbench_dsl.engine.kube_objects import ObjectStore
from workbench_dsl.errors import UsageError

SECRET = "s3cr3t-Value-42"


@dsl.component(base_image="python:3.11")
def uses_password() -> str:
    import hashlib
    import os

    pw = os.environ["DB_PASSWORD"]
    # Prove the task saw the value without returning it.
    return f"{len(pw)}:{hashlib.sha256(pw.encode()).hexdigest()[:8]}:{os.environ['MODE']}"


@dsl.pipeline(name="secret-env")
def secret_env(secret_name: str = "db") -> str:
    t = uses_password()
    t.set_caching_options(True)
    kubernetes.use_secret_as_env(
        t, secret_name=secret_name, secret_key_to_env={"password": "DB_PASSWORD"}
    )
    kubernetes.use_config_map_as_env(
        t, config_map_name="settings", config_map_key_to_env={"mode": "MODE"}
    )
    return t.output


def _all_files_containing(root: Path, needle: bytes, skip: Path) -> list[Path]:
    hits = []
    for dirpath, _, files in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            continue
        for f in files:
            p = Path(dirpath) / f
            try:
                if needle in p.read_bytes():
                    hits.append(p)
            except OSError:
                pass
    return hits


def test_secret_and_config_map_as_env_never_leave_the_secret_store(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    import hashlib

    ObjectStore(workbench_home, "secret").set("db", {"password": SECRET})
    ObjectStore(workbench_home, "configmap").set("settings", {"mode": "fast"})
    summary = run_kfp(secret_env)
    assert summary.status == "SUCCEEDED", summary.failures
    want = f"{len(SECRET)}:{hashlib.sha256(SECRET.encode()).hexdigest()[:8]}:fast"
    assert summary.outputs["Output"] == want
    folder = workbench_home / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "db.json").stat().st_mode) == 0o600
    # the cache key holds a digest: the same secret is a hit, a changed one a miss
    assert [t["cached"] for t in run_kfp(secret_env).tasks] == [True]
    ObjectStore(workbench_home, "secret").set("db", {"password": "other-value"})
    third = run_kfp(secret_env)
    assert [t["cached"] for t in third.tasks] == [False]
    assert third.outputs["Output"].startswith("11:")
    for value in (SECRET, "other-value"):
        assert _all_files_containing(workbench_home, value.encode(), folder) == []


def test_preflight_lists_every_problem_and_records_nothing(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    @dsl.container_component
    def needs_tool() -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="example/tool:1", command=["no-such-tool-xyz"], args=["go"])

    @dsl.component(base_image="python:3.11")
    def reads(data: dsl.Input[dsl.Dataset], n: int) -> None:
        pass

    @dsl.pipeline(name="many-problems")
    def p(data: dsl.Input[dsl.Dataset], n: int) -> None:
        reads(data=data, n=n)
        t = needs_tool()
        kubernetes.use_secret_as_env(t, secret_name="api", secret_key_to_env={"token": "TOKEN"})
        kubernetes.use_config_map_as_env(
            t, config_map_name="cfg", config_map_key_to_env={"url": "URL"}
        )

    ObjectStore(workbench_home, "configmap").set("cfg", {"other": "x"})
    text = compile_yaml(p).read_text()
    with pytest.raises(UsageError) as err:
        execute.start(text, {}, root=LocalRoot(workbench_home))
    msg = str(err.value)
    assert "5 problems" in msg, msg
    assert "missing required parameter: n" in msg
    assert "--input data=PATH" in msg
    assert "workbench secrets set api token=VALUE" in msg
    assert "config map 'cfg' has no key 'url' (it has: other): workbench configmaps set" in msg
    assert "program 'no-such-tool-xyz' not found" in msg
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []


def test_pipeline_input_artifact_from_a_local_path(
    run_kfp: Callable[..., Any], tmp_path: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def count_lines(data: dsl.Input[dsl.Dataset]) -> int:
        with open(data.path) as f:
            return len(f.readlines())

    @dsl.pipeline(name="takes-data")
    def p(data: dsl.Input[dsl.Dataset]) -> int:
        return count_lines(data=data).output

    src = tmp_path / "rows.csv"
    src.write_text("a\nb\nc\n")
    summary = run_kfp(p, inputs={"data": str(src)})
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == 3


def test_secrets_cli_never_prints_values(workbench_home: Path, tmp_path: Path) -> None:
    from workbench_dsl.cli.app import app

    f = tmp_path / "key.pem"
    f.write_text("PEMDATA-123")
    r = CliRunner().invoke(
        app, ["secrets", "set", "db", f"password={SECRET}", "--from-file", "pem=" + str(f)]
    )
    assert r.exit_code == 0, r.output
    assert SECRET not in r.output
    r = CliRunner().invoke(app, ["secrets", "list", "--json"])
    assert r.exit_code == 0 and '"password"' in r.output and SECRET not in r.output
    assert "PEMDATA" not in r.output
    r = CliRunner().invoke(app, ["configmaps", "set", "cfg", "mode=fast"])
    r = CliRunner().invoke(app, ["configmaps", "list", "--json"])
    assert '"fast"' in r.output
    r = CliRunner().invoke(app, ["secrets", "rm", "db"])
    assert r.exit_code == 0
    r = CliRunner().invoke(app, ["secrets", "rm", "db"])
    assert r.exit_code == 2 and "no secret 'db'" in r.output
    r = CliRunner().invoke(app, ["secrets", "set", "Bad_Name", "a=b"])
    assert r.exit_code == 2


def test_run_cli_input_option(
    compile_yaml: Callable[..., Path], workbench_home: Path, tmp_path: Path
) -> None:
    import json

    from workbench_dsl.cli.app import app

    @dsl.component(base_image="python:3.11")
    def size(data: dsl.Input[dsl.Dataset]) -> int:
        import os

        return os.path.getsize(data.path)

    @dsl.pipeline(name="cli-input")
    def p(data: dsl.Input[dsl.Dataset]) -> int:
        return size(data=data).output

    path = compile_yaml(p)
    src = tmp_path / "d.bin"
    src.write_bytes(b"x" * 7)
    r = CliRunner().invoke(app, ["run", str(path), "--input", f"data={src}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["outputs"] == {"Output": 7}
    r = CliRunner().invoke(app, ["run", str(path)])
    assert r.exit_code == 2 and "--input data=PATH" in r.output
    r = CliRunner().invoke(app, ["run", str(path), "--input", "data"])
    assert r.exit_code == 2 and "NAME=PATH" in r.output


def test_an_input_or_parameter_given_twice_is_refused(workbench_home: Path, tmp_path: Path) -> None:
    from workbench_dsl.cli.app import app

    other = tmp_path / "other.bin"
    other.write_bytes(b"y")
    r = CliRunner().invoke(
        app, ["run", "nowhere.yaml", "--input", f"data={other}", "--input", "data=/x"]
    )
    assert r.exit_code == 2
    assert r.output.strip() == "error: --input data given twice: give each input once"
    r = CliRunner().invoke(app, ["run", "nowhere.yaml", "-p", "n=1", "-p", "n=2"])
    assert r.exit_code == 2
    assert r.output.strip() == "error: -p n given twice: give each parameter once"


@dsl.container_component
def shell_step(text: str, out: dsl.OutputPath(str)) -> dsl.ContainerSpec:  # type: ignore[valid-type]
    return dsl.ContainerSpec(
        image="alpine:3.19",
        command=["sh", "-c"],
        args=[
            'set -eo pipefail\nif [[ "$0" == hello* ]]; then printf "%s" "$0" | tr a-z A-Z > "$1"; '
            "fi\n[[ $0 != *fail* ]] || (false | cat)",
            text,
            out,
        ],
    )


@dsl.pipeline(name="image-shell")
def image_shell(text: str = "hello") -> str:
    return shell_step(text=text).outputs["out"]


def test_image_shell_scripts_with_pipefail_and_double_brackets(
    run_kfp: Callable[..., Any],
) -> None:
    ok = run_kfp(image_shell)
    assert ok.status == "SUCCEEDED", ok.failures
    assert ok.outputs["Output"] == "HELLO"
    # pipefail as in the image: `false | cat` fails the step
    bad = run_kfp(image_shell, {"text": "hello-fail"})
    assert bad.status == "FAILED"
    assert bad.failures[0]["error"] == "exited with code 1"


# Mount paths under a folder of this test process, so tests leave nothing on the host.
MNT = f"/tmp/wb-standins-{os.getpid()}"


@dsl.component(base_image="python:3.11")
def write_shard(i: int, where: str) -> None:
    with open(f"{where}/{i}.txt", "w") as f:
        f.write(str(i))


@dsl.component(base_image="python:3.11")
def count_shards(where: str) -> int:
    import os

    return len(os.listdir(where))


@dsl.pipeline(name="pvc-shards")
def pvc_shards() -> int:
    pvc = kubernetes.CreatePVC(
        pvc_name_suffix="-shards", access_modes=["ReadWriteOnce"], size="1Gi"
    )
    with dsl.ParallelFor([1, 2, 3]) as i:
        w = write_shard(i=i, where=f"{MNT}/data")
        kubernetes.mount_pvc(w, pvc_name=pvc.outputs["name"], mount_path=f"{MNT}/data")
    r = count_shards(where=f"{MNT}/data").after(w)
    kubernetes.mount_pvc(r, pvc_name=pvc.outputs["name"], mount_path=f"{MNT}/data")
    kubernetes.DeletePVC(pvc_name=pvc.outputs["name"]).after(r)
    return r.output


@pytest.fixture
def mount_root() -> Any:
    import shutil

    from workbench_dsl.engine import mounts

    why = mounts.available()
    if why is not None:
        pytest.skip(why)
    yield MNT
    shutil.rmtree(MNT, ignore_errors=True)


def test_pvc_shared_by_a_parallel_for_at_its_mount_path(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    summary = run_kfp(pvc_shards)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == 3
    # DeletePVC removed the volume; the host's mount point was only ever an empty folder
    assert list((workbench_home / "volumes").iterdir()) == []
    assert os.listdir(f"{MNT}/data") == []


def test_existing_claim_persists_and_volumes_cli(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    from workbench_dsl.cli.app import app

    @dsl.pipeline(name="existing-claim")
    def p(i: int) -> int:
        w = write_shard(i=i, where=f"{MNT}/cache")
        kubernetes.mount_pvc(w, pvc_name="team-cache", mount_path=f"{MNT}/cache")
        r = count_shards(where=f"{MNT}/cache").after(w)
        r.set_caching_options(False)  # as on a cluster: the cache does not see a volume's content
        kubernetes.mount_pvc(r, pvc_name="team-cache", mount_path=f"{MNT}/cache")
        return r.output

    assert run_kfp(p, {"i": 1}).outputs["Output"] == 1
    assert run_kfp(p, {"i": 2}).outputs["Output"] == 2  # the claim outlives the run
    r = CliRunner().invoke(app, ["volumes", "list", "--json"])
    assert r.exit_code == 0, r.output
    import json

    (vol,) = json.loads(r.stdout)
    assert (vol["name"], vol["files"]) == ("team-cache", 2)
    assert CliRunner().invoke(app, ["volumes", "rm", "team-cache"]).exit_code == 0
    assert not (workbench_home / "volumes" / "team-cache").exists()
    assert CliRunner().invoke(app, ["volumes", "rm", "team-cache"]).exit_code == 2


def test_secret_and_config_map_as_files_and_empty_dir(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    @dsl.component(base_image="python:3.11")
    def reads_files(sec: str, cfg: str, scratch: str) -> str:
        import hashlib
        import os
        from pathlib import Path

        pw = Path(f"{sec}/password").read_text()
        Path(f"{scratch}/tmp.txt").write_text("x")  # an emptyDir is writable
        try:
            Path(f"{sec}/new").write_text("")
            ro = "rw"
        except OSError:
            ro = "ro"
        mode = Path(f"{cfg}/mode").read_text()
        return f"{hashlib.sha256(pw.encode()).hexdigest()[:8]}:{mode}:{ro}:{os.listdir(scratch)}"

    @dsl.pipeline(name="files")
    def p() -> str:
        t = reads_files(sec=f"{MNT}/sec", cfg=f"{MNT}/cfg", scratch=f"{MNT}/scratch")
        kubernetes.use_secret_as_volume(t, secret_name="db", mount_path=f"{MNT}/sec")
        kubernetes.use_config_map_as_volume(t, config_map_name="settings", mount_path=f"{MNT}/cfg")
        kubernetes.empty_dir_mount(t, volume_name="scratch", mount_path=f"{MNT}/scratch")
        return t.output

    import hashlib

    ObjectStore(workbench_home, "secret").set("db", {"password": SECRET})
    ObjectStore(workbench_home, "configmap").set("settings", {"mode": "fast"})
    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    digest = hashlib.sha256(SECRET.encode()).hexdigest()[:8]
    assert summary.outputs["Output"] == f"{digest}:fast:ro:['tmp.txt']"
    assert _all_files_containing(workbench_home, SECRET.encode(), workbench_home / "secrets") == []
    assert os.listdir(f"{MNT}/sec") == []  # nothing was written on the host


def test_secret_in_a_parallel_for_named_by_a_parameter(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def tagged(i: int) -> str:
        import os

        return f"{i}:{len(os.environ['TOKEN'])}"

    @dsl.pipeline(name="loop-secret")
    def p(secret_name: str = "api") -> None:
        with dsl.ParallelFor([1, 2]) as i:
            t = tagged(i=i)
            kubernetes.use_secret_as_env(
                t, secret_name=secret_name, secret_key_to_env={"token": "TOKEN"}
            )

    ObjectStore(workbench_home, "secret").set("api", {"token": SECRET})
    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    # a name given as a parameter that is not set: refused before the run, with the command
    with pytest.raises(UsageError, match="workbench secrets set nope token=VALUE"):
        run_kfp(p, {"secret_name": "nope"})
    assert _all_files_containing(workbench_home, SECRET.encode(), workbench_home / "secrets") == []


def test_field_paths_as_a_pod_sees_them(run_kfp: Callable[..., Any]) -> None:
    @dsl.component(base_image="python:3.11")
    def who(fail_first: bool) -> str:
        import os

        pod = os.environ["POD"]
        if fail_first and pod.endswith("-1"):
            raise RuntimeError("first attempt fails")
        return f"{pod}|{os.environ['NS']}|{os.environ['TEAM']}|{os.environ['NOTE']}"

    @dsl.pipeline(name="fields")
    def p() -> str:
        t = who(fail_first=True).set_retry(num_retries=1, backoff_duration="0s")
        kubernetes.add_pod_label(t, "team", "ml")
        kubernetes.add_pod_annotation(t, "note", "hi")
        kubernetes.use_field_path_as_env(t, "POD", "metadata.name")
        kubernetes.use_field_path_as_env(t, "NS", "metadata.namespace")
        kubernetes.use_field_path_as_env(t, "TEAM", "metadata.labels['team']")
        kubernetes.use_field_path_as_env(t, "NOTE", "metadata.annotations['note']")
        return t.output

    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    pod, ns, team, note = summary.outputs["Output"].split("|")
    assert pod == f"fields-{summary.run_id}-who-2"  # a new pod name for the retry
    assert (ns, team, note) == ("local", "ml", "hi")


def test_a_final_status_component_compiled_alone_is_refused_up_front(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def exit_comp(status: dsl.PipelineTaskFinalStatus) -> None:
        print(status)

    text = compile_yaml(exit_comp, "exit-comp").read_text()
    with pytest.raises(UsageError, match=r"use it as the exit task of a dsl\.ExitHandler"):
        execute.start(text, {}, root=LocalRoot(workbench_home))


def test_a_secret_a_task_prints_is_masked_in_its_log_and_error(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def leaky() -> None:
        import os
        import sys

        pw = os.environ["PW"]
        print(f"password is {pw}!", flush=True)
        for ch in pw:  # one byte at a time: the mask must see across reads
            sys.stdout.write(ch)
            sys.stdout.flush()
        print(flush=True)
        raise ValueError(f"rejected {pw}")

    @dsl.pipeline(name="leaky")
    def p() -> None:
        t = leaky()
        kubernetes.use_secret_as_env(t, secret_name="db", secret_key_to_env={"password": "PW"})

    ObjectStore(workbench_home, "secret").set("db", {"password": SECRET})
    summary = run_kfp(p)
    assert summary.status == "FAILED"
    (failure,) = summary.failures
    assert SECRET not in failure["error"] and "rejected ***" in failure["error"]
    log = Path(failure["log_path"]).read_text()
    assert "password is ***!" in log and "\n***\n" in log
    assert _all_files_containing(workbench_home, SECRET.encode(), workbench_home / "secrets") == []


def test_a_script_that_only_the_image_has_is_refused_up_front(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    @dsl.container_component
    def train(epochs: int) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="gcr.io/my-image", command=["sh", "run.sh"], args=[epochs])

    @dsl.pipeline(name="image-script")
    def p() -> None:
        train(epochs=3)

    text = compile_yaml(p).read_text()
    with pytest.raises(UsageError, match=r"script 'run\.sh' is not on this machine"):
        execute.start(text, {}, root=LocalRoot(workbench_home))


def test_pod_names_of_tasks_apart_only_by_non_ascii_letters_stay_apart() -> None:
    from workbench_dsl.engine.orchestrator.pod import pod_name_of

    a, b = (pod_name_of("p", "r1", q, 1) for q in ("e-ü", "e-é"))
    assert a != b
    assert all(len(n) <= 63 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", n) for n in (a, b))
    assert pod_name_of("p", "r1", "train", 1) == "p-r1-train-1"  # plain names are unchanged
