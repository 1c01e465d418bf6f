"""Held-out pipelines for the local stand-ins, written as KFP users write them.

Each test varies what ``test_standins.py`` covers: several problems of different
kinds at once, secrets and config maps mounted as files in cache keys, secret
values a task prints in other forms than the value itself.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl, kubernetes

from workbench_dsl.engine.kube_objects import ObjectStore
from workbench_dsl.errors import UsageError


def test_preflight_lists_parameter_problems_beside_the_others(
    compile_yaml: Callable[..., Path], workbench_home: Path, tmp_path: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def first() -> None:
        pass

    @dsl.container_component
    def later(n: int) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="example/x:1", command=["no-such-prog-holdout"], args=[n])

    @dsl.pipeline(name="all-at-once")
    def p(n: int, rate: float = 0.5) -> None:
        later(n=n).after(first())

    text = compile_yaml(p).read_text()
    with pytest.raises(UsageError) as err:
        execute.start(
            text, {"bogus": 1, "rate": "fast"}, root=LocalRoot(workbench_home), from_cli=True
        )
    msg = str(err.value)
    assert "4 problems, nothing ran" in msg, msg
    assert "unknown parameter 'bogus'" in msg
    assert "parameter 'rate' expects a number" in msg
    assert "missing required parameter: n (an integer)" in msg
    assert "program 'no-such-prog-holdout' not found" in msg
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []


MNT = f"/tmp/wb-holdout-{os.getpid()}"


@pytest.fixture
def mount_root() -> Any:
    import shutil

    from workbench_dsl.engine import mounts

    why = mounts.available()
    if why is not None:
        pytest.skip(why)
    yield MNT
    shutil.rmtree(MNT, ignore_errors=True)


@pytest.mark.slow
def test_a_changed_secret_or_config_map_mounted_as_files_is_a_cache_miss(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    @dsl.component(base_image="python:3.11")
    def reads(sec: str, cfg: str) -> str:
        import hashlib

        with open(f"{sec}/token") as s, open(f"{cfg}/mode") as c:
            return f"{hashlib.sha256(s.read().encode()).hexdigest()[:8]}:{c.read()}"

    @dsl.pipeline(name="mounted-cache")
    def p() -> str:
        t = reads(sec=f"{MNT}/sec", cfg=f"{MNT}/cfg")
        kubernetes.use_secret_as_volume(t, secret_name="vol", mount_path=f"{MNT}/sec")
        kubernetes.use_config_map_as_volume(t, config_map_name="cm", mount_path=f"{MNT}/cfg")
        return t.output

    secrets, maps = ObjectStore(workbench_home, "secret"), ObjectStore(workbench_home, "configmap")
    secrets.set("vol", {"token": "first-token"})
    maps.set("cm", {"mode": "a"})
    outputs = []
    for change in (
        None,
        None,
        lambda: secrets.set("vol", {"token": "other-token"}),
        lambda: maps.set("cm", {"mode": "b"}),
    ):
        if change:
            change()
        s = run_kfp(p)
        assert s.status == "SUCCEEDED", s.failures
        outputs.append((s.outputs["Output"], s.tasks[0]["cached"]))
    assert [cached for _, cached in outputs] == [False, True, False, False]
    assert outputs[2][0].endswith(":a") and outputs[3][0].endswith(":b")
    assert outputs[0][0] != outputs[2][0]


MULTILINE = "user=\"ml-bot\" \u00fcber=\u20ac\nline-two=xyz'q'\r\nthird line"


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and "secrets" not in p.parts and needle in p.read_bytes()
    ]


@pytest.mark.slow
def test_a_multi_line_secret_printed_in_other_forms_is_masked(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def chatty() -> None:
        import json
        import os
        import sys
        from urllib.parse import quote

        v = os.environ["CREDS"]
        print(repr(v))
        print(json.dumps({"creds": v}))
        print(f"postgres://bot:{quote(v, safe='')}@db/x")
        for line in v.splitlines():
            print("line:", line, file=sys.stderr)
        raise ValueError(f"bad creds {v!r}")

    @dsl.pipeline(name="chatty")
    def p() -> None:
        t = chatty()
        kubernetes.use_secret_as_env(t, secret_name="creds", secret_key_to_env={"c": "CREDS"})

    ObjectStore(workbench_home, "secret").set("creds", {"c": MULTILINE})
    summary = run_kfp(p)
    assert summary.status == "FAILED"
    (failure,) = summary.failures
    assert "bad creds" in failure["error"]
    log = Path(failure["log_path"]).read_text()
    assert log.count("***") >= 6, log
    for line in MULTILINE.splitlines():
        assert line not in failure["error"]
        assert _files_holding(workbench_home, line.strip().encode()) == [], line


def test_a_secret_that_holds_another_is_masked_whole(tmp_path: Path) -> None:
    from workbench_dsl.engine.kube_objects import redact
    from workbench_dsl.engine.logs import LogPump

    short, long = "abcdef", "abcdefghij-tail"
    r, w = os.pipe()
    log = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    os.write(w, f"[{long}] [{short}]\n".encode())
    os.close(w)
    pump = LogPump(r, log, 0, mask=(short.encode(), long.encode()))
    while pump.pump(drain=True):
        pass
    os.close(r)
    os.close(log)
    assert (tmp_path / "log").read_text() == "[***] [***]\n"
    assert redact(f"{long} {short}", [short, long]) == "*** ***"


@pytest.mark.slow
def test_an_optional_secret_or_config_map_that_is_not_set_mounts_an_empty_folder(
    run_kfp: Callable[..., Any], mount_root: str
) -> None:
    # The kubelet mounts an empty volume for an optional object that does not exist.
    @dsl.component(base_image="python:3.11")
    def look(sec: str, cfg: str) -> str:
        import os

        return f"{os.listdir(sec)}|{os.listdir(cfg)}"

    @dsl.pipeline(name="optional-mounts")
    def p() -> str:
        t = look(sec=f"{MNT}/sec", cfg=f"{MNT}/cfg")
        kubernetes.use_secret_as_volume(
            t, secret_name="absent", mount_path=f"{MNT}/sec", optional=True
        )
        kubernetes.use_config_map_as_volume(
            t, config_map_name="absent", mount_path=f"{MNT}/cfg", optional=True
        )
        return t.output

    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "[]|[]"


@pytest.mark.slow
def test_a_binary_secret_from_a_file_reaches_the_task_byte_for_byte(
    run_kfp: Callable[..., Any], workbench_home: Path, tmp_path: Path, mount_root: str
) -> None:
    import hashlib

    from typer.testing import CliRunner

    from workbench_dsl.cli.app import app

    # A keystore: not UTF-8, with a NUL-free run of bytes no text would hold.
    blob = bytes(range(1, 256)) + b"\xff\xfe\x80tail"
    (tmp_path / "store.p12").write_bytes(blob)
    r = CliRunner().invoke(
        app, ["secrets", "set", "ks", "--from-file", f"store.p12={tmp_path / 'store.p12'}"]
    )
    assert r.exit_code == 0, r.output

    @dsl.component(base_image="python:3.11")
    def digest_of(where: str) -> str:
        import hashlib
        import os

        with open(f"{where}/store.p12", "rb") as f:
            from_file = hashlib.sha256(f.read()).hexdigest()
        from_env = hashlib.sha256(os.environb[b"KEYSTORE"]).hexdigest()
        print(os.environ["KEYSTORE"])  # masked in the log like any secret
        return f"{from_file}|{from_env}"

    @dsl.pipeline(name="binary-secret")
    def p() -> str:
        t = digest_of(where=f"{MNT}/ks")
        kubernetes.use_secret_as_volume(t, secret_name="ks", mount_path=f"{MNT}/ks")
        kubernetes.use_secret_as_env(
            t, secret_name="ks", secret_key_to_env={"store.p12": "KEYSTORE"}
        )
        return t.output

    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    want = hashlib.sha256(blob).hexdigest()
    assert summary.outputs["Output"] == f"{want}|{want}"
    assert [t["cached"] for t in run_kfp(p).tasks] == [True]
    assert _files_holding(workbench_home, blob[100:140]) == []


def test_a_program_or_script_at_a_path_only_the_image_has_is_refused_up_front(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def first() -> str:
        return "x"

    @dsl.container_component
    def trainer(x: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(
            image="gcr.io/acme/trainer:1", command=["python3", "/app/train.py"], args=["--x", x]
        )

    @dsl.container_component
    def prep(x: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(
            image="gcr.io/acme/trainer:1",
            command=["sh", "-c", 'set -e; echo start; /opt/tools/prep.sh "$0"', x],
        )

    @dsl.container_component
    def writes_its_own(x: str) -> dsl.ContainerSpec:
        # The script makes the file it runs: nothing to refuse.
        script = 'mkdir -p /tmp/wb-h/bin && printf "echo hi" > /tmp/wb-h/bin/t.sh && sh /tmp/wb-h/bin/t.sh'
        return dsl.ContainerSpec(image="alpine", command=["sh", "-c", script])

    @dsl.container_component
    def from_volume() -> dsl.ContainerSpec:
        # An upstream task may have written it into the volume.
        return dsl.ContainerSpec(image="python:3.11", command=["python3", "/tmp/wb-h-vol/x.py"])

    @dsl.pipeline(name="image-paths")
    def p() -> None:
        f = first()
        trainer(x=f.output)
        prep(x=f.output)
        writes_its_own(x=f.output)
        v = from_volume()
        kubernetes.mount_pvc(v, pvc_name="scripts", mount_path="/tmp/wb-h-vol")

    text = compile_yaml(p).read_text()
    with pytest.raises(UsageError) as err:
        execute.start(text, {}, root=LocalRoot(workbench_home))
    msg = str(err.value)
    assert "nothing ran" in msg and "writes-its-own" not in msg and "from-volume" not in msg
    assert "task trainer: '/app/train.py' is not on this machine" in msg
    assert "task prep: '/opt/tools/prep.sh' is not on this machine" in msg
    assert "image gcr.io/acme/trainer:1" in msg


def test_a_script_that_exits_127_on_a_missing_path_is_diagnosed(tmp_path: Path) -> None:
    from workbench_dsl.engine.container import diagnose_exit

    log = tmp_path / "log"
    log.write_text("start\nx: line 1: /opt/tools/prep.sh: No such file or directory\n")
    msg = diagnose_exit(127, log, "gcr.io/acme/trainer:1")
    assert msg is not None and "program '/opt/tools/prep.sh' not found on this machine" in msg


@pytest.mark.slow
def test_the_cache_key_holds_the_names_of_the_claims_a_task_mounts(
    run_kfp: Callable[..., Any], mount_root: str
) -> None:
    # KFP's driver puts the PVC names in the fingerprint (backend/src/v2/driver/cache.go,
    # getFingerPrint): a task on a per-run volume is a miss in every run, one on the
    # same claim a hit.
    @dsl.component(base_image="python:3.11")
    def write(where: str) -> str:
        with open(f"{where}/f.txt", "w") as f:
            f.write("x")
        return where

    @dsl.pipeline(name="claim-names")
    def p() -> None:
        pvc = kubernetes.CreatePVC(
            pvc_name_suffix="-tmp", access_modes=["ReadWriteOnce"], size="1Gi"
        )
        w = write(where=f"{MNT}/run")
        kubernetes.mount_pvc(w, pvc_name=pvc.outputs["name"], mount_path=f"{MNT}/run")
        kubernetes.DeletePVC(pvc_name=pvc.outputs["name"]).after(w)
        kept = write(where=f"{MNT}/kept")
        kubernetes.mount_pvc(kept, pvc_name="kept-claim", mount_path=f"{MNT}/kept")

    assert run_kfp(p).status == "SUCCEEDED"
    second = run_kfp(p)
    cached = {t["name"]: t["cached"] for t in second.tasks}
    assert (cached["write"], cached["write-2"]) == (False, True), cached


@pytest.mark.slow
def test_kubernetes_expands_env_references_in_a_container_command(
    run_kfp: Callable[..., Any], workbench_home: Path, tmp_path: Path
) -> None:
    # The kubelet expands $(VAR) in command and args from the container's env; $$ is a
    # literal $, and a reference to an undefined variable stays as it is.
    from workbench_dsl.engine.container import expand_env_refs

    env = {"POD": "p-1", "TOKEN": "t0k3n-value"}
    assert expand_env_refs("--pod=$(POD) $$(POD) $(NOPE) $(date) $$ $x $", env) == (
        "--pod=p-1 $(POD) $(NOPE) $(date) $ $x $"
    )

    @dsl.container_component
    def echo(out: dsl.OutputPath(str)) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(
            image="alpine",
            command=["sh", "-c", 'printf "%s|%s" "$0" "$1" > "$2"'],
            args=["$(POD_NAME)", "auth=$(TOKEN)", out],
        )

    @dsl.pipeline(name="env-refs")
    def p() -> str:
        t = echo()
        kubernetes.use_field_path_as_env(t, "POD_NAME", "metadata.name")
        kubernetes.use_secret_as_env(t, secret_name="tok", secret_key_to_env={"t": "TOKEN"})
        return t.outputs["out"]

    ObjectStore(workbench_home, "secret").set("tok", {"t": "t0k3n-value"})
    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    pod, auth = summary.outputs["Output"].split("|")
    assert pod == f"env-refs-{summary.run_id}-echo-1" and auth == "auth=t0k3n-value"


def test_a_secret_named_by_a_parameter_handed_to_a_sub_pipeline_is_checked_up_front(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def first() -> str:
        return "x"

    @dsl.component(base_image="python:3.11")
    def use(i: int) -> None:
        pass

    @dsl.pipeline(name="inner")
    def inner(sname: str, cname: str) -> None:
        with dsl.ParallelFor([1, 2]) as i:
            t = use(i=i)
            kubernetes.use_secret_as_env(t, secret_name=sname, secret_key_to_env={"tok": "T"})
            kubernetes.use_config_map_as_volume(t, config_map_name=cname, mount_path="/tmp/x")

    @dsl.pipeline(name="outer")
    def p(secret: str = "absent-secret") -> None:
        f = first()
        inner(sname=secret, cname="absent-map").after(f)

    text = compile_yaml(p).read_text()
    with pytest.raises(UsageError) as err:
        execute.start(text, {}, root=LocalRoot(workbench_home))
    msg = str(err.value)
    assert "workbench secrets set absent-secret tok=VALUE" in msg, msg
    assert "workbench configmaps set absent-map KEY=VALUE" in msg, msg
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []


@pytest.mark.slow
def test_a_sub_pipeline_input_that_shares_a_parameter_name_names_its_own_secret(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def token_length() -> int:
        import os

        return len(os.environ["T"])

    @dsl.pipeline(name="inner")
    def inner(secret_name: str) -> int:
        t = token_length()
        kubernetes.use_secret_as_env(t, secret_name=secret_name, secret_key_to_env={"tok": "T"})
        return t.output

    @dsl.pipeline(name="shadowed")
    def p(secret_name: str = "db") -> int:
        outer = token_length()
        kubernetes.use_secret_as_env(outer, secret_name=secret_name, secret_key_to_env={"tok": "T"})
        return inner(secret_name="analytics").after(outer).output

    secrets = ObjectStore(workbench_home, "secret")
    secrets.set("db", {"tok": "four"})
    secrets.set("analytics", {"tok": "eight-ch"})
    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == 8


@pytest.mark.slow
def test_a_claim_mounted_with_a_sub_path_shows_only_that_folder(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    @dsl.component(base_image="python:3.11")
    def write(where: str, name: str) -> None:
        with open(f"{where}/{name}", "w") as f:
            f.write(name)

    @dsl.component(base_image="python:3.11")
    def listing(where: str) -> str:
        import os

        return ",".join(sorted(os.listdir(where)))

    @dsl.pipeline(name="sub-paths")
    def p() -> str:
        a = write(where=f"{MNT}/a", name="in-a")
        kubernetes.mount_pvc(a, pvc_name="shared", mount_path=f"{MNT}/a", sub_path="part-a")
        b = write(where=f"{MNT}/b", name="in-b")
        kubernetes.mount_pvc(b, pvc_name="shared", mount_path=f"{MNT}/b", sub_path="nested/b")
        whole = listing(where=f"{MNT}/all").after(a, b)
        kubernetes.mount_pvc(whole, pvc_name="shared", mount_path=f"{MNT}/all")
        return whole.output

    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "nested,part-a"
    assert (workbench_home / "volumes/shared/part-a/in-a").read_text() == "in-a"
    assert (workbench_home / "volumes/shared/nested/b/in-b").exists()


def test_a_sub_path_leading_out_of_its_volume_is_refused_up_front(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def noop() -> None:
        pass

    @dsl.pipeline(name="bad-sub-path")
    def p() -> None:
        t = noop()
        kubernetes.mount_pvc(t, pvc_name="shared", mount_path="/tmp/x", sub_path="../../etc")

    with pytest.raises(UsageError, match=r"sub_path '\.\./\.\./etc' .* without '\.\.'"):
        execute.start(compile_yaml(p).read_text(), {}, root=LocalRoot(workbench_home))
    assert not (workbench_home / "volumes").exists()


@pytest.mark.slow
def test_an_ephemeral_volume_is_a_fresh_folder_for_each_attempt(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    # A generic ephemeral volume is a PVC made for the pod and deleted with it.
    @dsl.component(base_image="python:3.11")
    def scratch(where: str) -> str:
        import os

        before = sorted(os.listdir(where))
        with open(f"{where}/big.bin", "wb") as f:
            f.write(b"x" * 1024)
        if os.environ.get("FAIL_ONCE") and not before and not os.path.exists("/tmp/wb-h-e"):
            os.makedirs("/tmp/wb-h-e")
            raise RuntimeError("first attempt fails")
        return str(before)

    @dsl.pipeline(name="ephemeral")
    def p() -> str:
        t = scratch(where=f"{MNT}/eph").set_retry(num_retries=1, backoff_duration="0s")
        t.set_env_variable("FAIL_ONCE", "1")
        kubernetes.add_ephemeral_volume(
            t,
            volume_name="eph",
            mount_path=f"{MNT}/eph",
            access_modes=["ReadWriteOnce"],
            size="5Gi",
        )
        return t.output

    import shutil

    shutil.rmtree("/tmp/wb-h-e", ignore_errors=True)
    try:
        summary = run_kfp(p)
    finally:
        shutil.rmtree("/tmp/wb-h-e", ignore_errors=True)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "[]"  # the retry got a fresh volume
    assert not any("ephemeral" in n for n in summary.notices), summary.notices
    assert not os.listdir(f"{MNT}/eph")  # nothing landed on the host
    leftovers = [p for p in (workbench_home / "runs").rglob("big.bin")]
    assert leftovers == []  # deleted with its attempt, as with its pod


@pytest.mark.slow
def test_a_status_line_that_quotes_a_secret_is_stored_masked(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def reports() -> None:
        import os

        with open(os.environ["WORKBENCH_STATUS_FILE"], "w") as f:
            f.write(f"connected with {os.environ['PW']}")

    @dsl.pipeline(name="status-line")
    def p() -> None:
        t = reports()
        kubernetes.use_secret_as_env(t, secret_name="db", secret_key_to_env={"pw": "PW"})

    ObjectStore(workbench_home, "secret").set("db", {"pw": "st4tus-secret"})
    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    import sqlite3

    db = sqlite3.connect(workbench_home / "runs.db")
    (line,) = db.execute("SELECT status_line FROM tasks").fetchone()
    assert line == "connected with ***"


@pytest.mark.slow
def test_secrets_named_by_loop_items_are_checked_up_front(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def token_length(n: str) -> int:
        import os

        return len(os.environ["T"])

    @dsl.pipeline(name="loop-names")
    def p(names: list = ["t-a", "t-b"]) -> None:  # noqa: B006 (KFP reads the default)
        with dsl.ParallelFor(["t-c", "t-d"]) as name:
            t = token_length(n=name)
            kubernetes.use_secret_as_env(t, secret_name=name, secret_key_to_env={"tok": "T"})
        with dsl.ParallelFor(names) as other:
            t2 = token_length(n=other)
            kubernetes.use_secret_as_env(t2, secret_name=other, secret_key_to_env={"tok": "T"})

    secrets = ObjectStore(workbench_home, "secret")
    secrets.set("t-a", {"tok": "x"})
    secrets.set("t-c", {"tok": "x"})
    with pytest.raises(UsageError) as err:
        run_kfp(p)
    msg = str(err.value)
    assert "2 problems" in msg and "set t-b tok=VALUE" in msg and "set t-d tok=VALUE" in msg
    assert "t-a" not in msg and not (workbench_home / "runs").exists()
    secrets.set("t-b", {"tok": "x"})
    secrets.set("t-d", {"tok": "x"})
    assert run_kfp(p).status == "SUCCEEDED"
    with pytest.raises(UsageError, match="set t-e tok=VALUE"):
        run_kfp(p, {"names": ["t-a", "t-e"]})


@pytest.mark.slow
def test_a_secret_mounted_inside_a_claim_is_mounted_after_it(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    # The container runtime mounts parents first, whatever the order they are listed in.
    @dsl.component(base_image="python:3.11")
    def nested(base: str) -> str:
        import os

        with open(f"{base}/written.txt", "w") as f:
            f.write("x")
        with open(f"{base}/creds/k") as f:
            return f"{sorted(os.listdir(base))}|{len(f.read())}"

    @dsl.pipeline(name="nested-mounts")
    def p() -> str:
        t = nested(base=f"{MNT}/data")
        kubernetes.use_secret_as_volume(t, secret_name="nest", mount_path=f"{MNT}/data/creds")
        kubernetes.mount_pvc(t, pvc_name="nest-claim", mount_path=f"{MNT}/data")
        return t.output

    ObjectStore(workbench_home, "secret").set("nest", {"k": "nested-secret"})
    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "['creds', 'written.txt']|13"
    assert (workbench_home / "volumes/nest-claim/written.txt").exists()


def test_two_volumes_at_one_path_are_refused_up_front(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def noop() -> None:
        pass

    @dsl.pipeline(name="same-path")
    def p() -> None:
        t = noop()
        kubernetes.mount_pvc(t, pvc_name="a", mount_path="/tmp/wb-h-same")
        kubernetes.empty_dir_mount(t, volume_name="b", mount_path="/tmp/wb-h-same/")

    with pytest.raises(UsageError, match="task noop: two volumes are mounted at /tmp/wb-h-same"):
        execute.start(compile_yaml(p).read_text(), {}, root=LocalRoot(workbench_home))


@pytest.mark.slow
def test_each_create_pvc_in_a_parallel_for_makes_its_own_volume(
    run_kfp: Callable[..., Any], workbench_home: Path, mount_root: str
) -> None:
    # KFP's driver names a claim uuid + pvc_name_suffix: one per CreatePVC execution.
    @dsl.component(base_image="python:3.11")
    def fill(i: int, where: str) -> str:
        import os
        import time

        with open(f"{where}/{i}.txt", "w") as f:
            f.write(str(i))
        time.sleep(0.3)  # the others write and delete theirs meanwhile
        return ",".join(sorted(os.listdir(where)))

    @dsl.pipeline(name="pvc-per-item")
    def p() -> None:
        with dsl.ParallelFor([1, 2, 3]) as i:
            pvc = kubernetes.CreatePVC(
                pvc_name_suffix="-item", access_modes=["ReadWriteOnce"], size="1Gi"
            )
            t = fill(i=i, where=f"{MNT}/item")
            kubernetes.mount_pvc(t, pvc_name=pvc.outputs["name"], mount_path=f"{MNT}/item")
            kubernetes.DeletePVC(pvc_name=pvc.outputs["name"]).after(t)

    summary = run_kfp(p, cache=False)
    assert summary.status == "SUCCEEDED", summary.failures
    import json
    import sqlite3

    rows = sqlite3.connect(workbench_home / "runs.db").execute(
        "SELECT task, outputs_json FROM tasks WHERE outputs_json IS NOT NULL"
    )
    outs = {task: json.loads(text)["parameters"] for task, text in rows}
    assert sorted(v["Output"] for k, v in outs.items() if "fill" in k) == [
        "1.txt",
        "2.txt",
        "3.txt",
    ]
    names = {v["name"] for k, v in outs.items() if "createpvc" in k}
    assert len(names) == 3 and all(n.endswith("-item") for n in names), names
    assert not any((workbench_home / "volumes").iterdir())


def test_a_pods_uid_is_a_uuid_of_its_attempt() -> None:
    import uuid

    from workbench_dsl.engine.platform import ExecutorPlatform

    ex = ExecutorPlatform(field_env={"UID": "metadata.uid", "POD": "metadata.name"})
    first, again, other = (ex.env_for(n) for n in ("p-1", "p-1", "p-2"))
    assert uuid.UUID(first["UID"]) and first == again and first["UID"] != other["UID"]


def test_a_here_document_line_is_not_a_program() -> None:
    from workbench_dsl.engine.preflight import _paths_in_image

    script = "cat > /tmp/list.txt <<EOF\n/opt/not/a/program\nEOF\nwc -l /tmp/list.txt"
    assert _paths_in_image(["sh", "-c", script], set()) == []
    assert _paths_in_image(["sh", "-c", "/opt/not/a/program --x"], set()) == ["/opt/not/a/program"]


def test_a_script_that_tests_for_a_program_before_running_it_is_left_alone() -> None:
    from workbench_dsl.engine.preflight import _paths_in_image

    script = "if [ -x /opt/tool/run ]; then /opt/tool/run; else echo no tool; fi"
    assert _paths_in_image(["sh", "-c", script], set()) == []
    twice = "/opt/tool/run a && /opt/tool/run b"
    assert _paths_in_image(["sh", "-c", twice], set()) == ["/opt/tool/run"]


def test_an_optional_mount_named_by_an_unset_parameter_needs_no_mount_point(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from typing import Optional

    from workbench_dsl.engine import preflight
    from workbench_dsl.engine.spec import PipelineSpec

    @dsl.component(base_image="python:3.11")
    def noop() -> None:
        pass

    @dsl.pipeline(name="optional-unset")
    def p(cm: Optional[str] = None) -> None:  # noqa: UP045 (KFP reads typing.Optional only)
        t = noop()
        # not absolute: a mount point nothing could make
        kubernetes.use_config_map_as_volume(t, config_map_name=cm, mount_path="rel", optional=True)

    spec = PipelineSpec.parse(compile_yaml(p).read_text())
    preflight.check(spec, {}, from_cli=False, root=workbench_home)  # nothing to mount
    ObjectStore(workbench_home, "configmap").set("there", {"a": "b"})
    with pytest.raises(UsageError, match="mount path 'rel' is not absolute"):
        preflight.check(spec, {"cm": "there"}, from_cli=False, root=workbench_home)


@pytest.mark.slow
def test_an_input_folder_with_a_link_out_of_it_is_refused_before_the_run(
    run_kfp: Callable[..., Any], workbench_home: Path, tmp_path: Path
) -> None:
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def count(data: dsl.Input[dsl.Dataset]) -> int:
        import os

        return len(os.listdir(data.path))

    @dsl.pipeline(name="linked-input")
    def p(data: dsl.Input[dsl.Dataset]) -> int:
        return count(data=data).output

    folder = tmp_path / "rows"
    folder.mkdir()
    (folder / "a.csv").write_text("1\n")
    (tmp_path / "outside.txt").write_text("x")
    (folder / "link").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(UsageError, match=r"input artifact 'data': .*link.* points outside"):
        run_kfp(p, inputs={"data": str(folder)})
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []


@pytest.mark.slow
def test_a_secret_name_built_in_an_f_string_is_refused_with_why(
    run_kfp: Callable[..., Any],
) -> None:
    @dsl.component(base_image="python:3.11")
    def use() -> None:
        pass

    @dsl.pipeline(name="f-string-name")
    def p(env: str = "dev") -> None:
        t = use()
        kubernetes.use_secret_as_env(t, secret_name=f"{env}-db", secret_key_to_env={"k": "T"})

    with pytest.raises(UsageError, match="leaves a pipeline parameter inside an f-string unfilled"):
        run_kfp(p)


@pytest.mark.slow
def test_a_claim_name_kubernetes_would_refuse_is_refused_before_anything_runs(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def first() -> None:
        pass

    @dsl.pipeline(name="bad-claim")
    def p(claim: str = "My_Claim") -> None:
        t = first()
        kubernetes.mount_pvc(t, pvc_name=claim, mount_path="/tmp/wb-h-claim")

    with pytest.raises(UsageError, match="volume name 'My_Claim' is not a valid Kubernetes name"):
        run_kfp(p)
    assert not (workbench_home / "runs").exists()


@pytest.mark.slow
def test_a_field_path_a_pod_cannot_read_is_refused_before_anything_runs(
    run_kfp: Callable[..., Any],
) -> None:
    @dsl.component(base_image="python:3.11")
    def reads() -> None:
        pass

    @dsl.pipeline(name="bad-field")
    def p() -> None:
        t = reads()
        kubernetes.use_field_path_as_env(t, "PHASE", "status.phase")  # downward API volumes only
        kubernetes.use_field_path_as_env(t, "IPS", "status.podIPs")

    with pytest.raises(UsageError) as err:
        run_kfp(p)
    assert "field path 'status.phase' (env PHASE) is not one a pod can read" in str(err.value)
    assert "podIPs" not in str(err.value)


def test_a_status_line_that_quotes_a_secret_is_masked_on_disk_and_while_running(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    @dsl.component(base_image="python:3.11")
    def reports() -> None:
        import os
        import time

        with open(os.environ["WORKBENCH_STATUS_FILE"], "w") as f:
            f.write(f"connected with {os.environ['PW']}")
        time.sleep(1.5)  # the watcher copies the line while the task still runs

    @dsl.pipeline(name="status-file")
    def p() -> None:
        t = reports()
        kubernetes.use_secret_as_env(t, secret_name="db", secret_key_to_env={"pw": "PW"})

    ObjectStore(workbench_home, "secret").set("db", {"pw": "st4tus-file-secret"})
    seen: list[str] = []
    import threading

    from workbench_dsl.engine.run_view import read_status_line

    stop = threading.Event()

    def watch() -> None:  # what `runs show` reads for a running task, as it runs
        while not stop.wait(0.1):
            for f in (workbench_home / "runs").rglob("status/*.txt"):
                seen.append(read_status_line(str(f)) or "")

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    summary = run_kfp(p)
    stop.set()
    th.join()
    assert summary.status == "SUCCEEDED", summary.failures
    (shown,) = (workbench_home / "runs").rglob("status/*.txt")
    assert read_status_line(str(shown)) == "connected with ***"
    assert "connected with ***" in seen  # shown while the task ran (it sleeps 1.5 s)
    assert not any("st4tus-file-secret" in s for s in seen), seen
    for f in (workbench_home / "runs").rglob("*"):
        if f.is_file():
            assert b"st4tus-file-secret" not in f.read_bytes(), f


def test_a_secret_holding_a_nul_byte_as_an_env_var_is_refused_before_the_run(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    @dsl.component(base_image="python:3.11")
    def reads() -> None:
        pass

    @dsl.pipeline(name="nul-secret")
    def p() -> None:
        t = reads()
        kubernetes.use_secret_as_env(t, secret_name="ks", secret_key_to_env={"store.p12": "KS"})

    ObjectStore(workbench_home, "secret").set("ks", {"store.p12": "ab\x00c-zq9v"})
    with pytest.raises(UsageError) as err:
        execute.start(compile_yaml(p).read_text(), {}, root=LocalRoot(workbench_home))
    msg = str(err.value)
    assert (
        "key 'store.p12' of secret 'ks' holds a NUL byte, which an env var cannot hold: "
        "mount it as a file (use_secret_as_volume)" in msg
    ), msg
    assert "zq9v" not in msg  # the name and key, never the value
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []


def test_create_pvc_with_a_name_that_exists_fails_as_kfps_driver_does_unless_cached(
    run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    from workbench_dsl.engine import volumes

    def pipeline_for(claim: str) -> Any:
        @dsl.pipeline(name=f"fixed-{claim}")
        def p() -> str:
            return kubernetes.CreatePVC(
                pvc_name=claim, access_modes=["ReadWriteOnce"], size="1Gi"
            ).outputs["name"]

        return p

    volumes.volume_dir(workbench_home, "made-elsewhere", create=True)
    summary = run_kfp(pipeline_for("made-elsewhere"))
    assert summary.status == "FAILED"
    (failure,) = summary.failures
    assert failure["error"].startswith(
        'failed to create pvc: persistentvolumeclaims "made-elsewhere" already exists'
    ), failure

    p = pipeline_for("fresh-claim")
    first = run_kfp(p)
    assert first.status == "SUCCEEDED", first.failures
    assert first.outputs["Output"] == "fresh-claim"
    again = run_kfp(p)  # the driver's cache hit: the claim is not created again
    assert again.status == "SUCCEEDED", again.failures
    assert [t["cached"] for t in again.tasks] == [True]
    uncached = run_kfp(p, cache=False)
    assert uncached.status == "FAILED"
    assert "already exists" in uncached.failures[0]["error"]
    volumes.remove_volume(workbench_home, "fresh-claim")  # a DeletePVC since: made again
    remade = run_kfp(p)
    assert remade.status == "SUCCEEDED", remade.failures
    assert [t["cached"] for t in remade.tasks] == [False]
    assert volumes.volume_dir(workbench_home, "fresh-claim").is_dir()


def test_create_pvc_given_both_a_name_and_a_suffix_fails_as_kfps_driver_does(
    run_kfp: Callable[..., Any], compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    # backend/src/v2/driver/k8s.go, createPVC: at most one of the two may be non-empty.
    @dsl.pipeline(name="name-and-suffix")
    def p(suffix: str = "-data") -> str:
        return kubernetes.CreatePVC(
            pvc_name="both", pvc_name_suffix=suffix, access_modes=["ReadWriteOnce"], size="1Gi"
        ).outputs["name"]

    # Known before the run: refused up front, nothing recorded.
    with pytest.raises(UsageError, match="CreatePVC is given both pvc_name and pvc_name_suffix"):
        execute.start(compile_yaml(p).read_text(), {}, root=LocalRoot(workbench_home))
    assert RunStore(workbench_home / "runs.db").list_runs() == []
    assert run_kfp(p, {"suffix": ""}).outputs["Output"] == "both"

    @dsl.component(base_image="python:3.11")
    def suffix_of() -> str:
        return "-late"

    @dsl.pipeline(name="name-and-late-suffix")
    def late() -> str:
        return kubernetes.CreatePVC(
            pvc_name="late",
            pvc_name_suffix=suffix_of().output,
            access_modes=["ReadWriteOnce"],
            size="1Gi",
        ).outputs["name"]

    # Known only when the step starts: the step fails as the driver fails it.
    summary = run_kfp(late)
    assert summary.status == "FAILED"
    (failure,) = summary.failures
    assert failure["error"] == (
        "failed to create pvc: at most one of pvc_name and pvc_name_suffix can be non-empty"
    )
    assert not (workbench_home / "volumes" / "late").exists()
