"""Pipelines that need something from outside this machine are refused before anything runs.

Written as KFP users write them (``kfp.dsl``), compiled by KFP's compiler, run
through the real engine: remote imports a task reads, cloud CLIs, downloads,
cloud-service clients and launchers, Hugging Face Hub loads, placeholders only
a cloud fills. What only names a remote artifact still runs.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl
from typer.testing import CliRunner

from workbench_dsl.errors import UsageError


@dsl.component(base_image="python:3.11")
def count_lines(data: dsl.Input[dsl.Dataset]) -> int:
    with open(data.path) as f:
        return len(f.readlines())


@dsl.component(base_image="python:3.11")
def describe(data: dsl.Input[dsl.Dataset]) -> str:
    if data is None:
        return "none"
    return f"{data.uri}|{data.metadata.get('source', '')}"


@dsl.container_component
def copy_from_gcs(src: str, out: dsl.OutputPath(str)) -> dsl.ContainerSpec:  # type: ignore[valid-type]
    return dsl.ContainerSpec(
        image="google/cloud-sdk:slim",
        command=["sh", "-c", 'set -e\ngsutil cp "$0" "$1"\n', src, out],
    )


@dsl.container_component
def fetch_table(out: dsl.OutputPath(str)) -> dsl.ContainerSpec:  # type: ignore[valid-type]
    return dsl.ContainerSpec(
        image="curlimages/curl",
        command=["sh", "-c"],
        args=[
            'mkdir -p "$(dirname "$0")"\ncurl --get \\\n  "https://data.example.org/t.csv" > "$0"',
            out,
        ],
    )


@dsl.container_component
def custom_job(project: str) -> dsl.ContainerSpec:
    return dsl.ContainerSpec(
        image="gcr.io/example/launchers:1",
        command=["python3", "-u", "-m", "no_such_launcher_pkg.custom_job"],
        args=["--project", project, "--resource", "{{$.pipeline_persistent_resource_id}}"],
    )


@dsl.component(base_image="python:3.11", packages_to_install=["codeflare-sdk==0.32.2"])
def ray_job() -> int:
    from codeflare_sdk.ray.cluster import Cluster, ClusterConfiguration

    Cluster(ClusterConfiguration(name="r", num_workers=1)).apply()
    return 1


@dsl.component(base_image="python:3.11", packages_to_install=["datasets"])
def hub_data(repo: str, out: dsl.Output[dsl.Dataset]) -> None:
    from datasets import load_dataset

    load_dataset(repo, split="train").to_csv(out.path)


@dsl.component(base_image="python:3.11")
def read_url(out: dsl.Output[dsl.Dataset]) -> None:
    import sqlite3
    import urllib.request

    print("see https://example.org/docs")  # mentioning a URL is not fetching it
    sqlite3.connect("file:cache.db")
    local = "sqlite:///cache.db"  # another scheme: not a remote need
    len(local.replace("sqlite:///", "sqlite:///"))
    urllib.request.urlretrieve("https://example.org/iris.csv", out.path)


@dsl.pipeline(name="inner")
def inner(data: dsl.Input[dsl.Dataset]) -> None:
    count_lines(data=data)


@dsl.pipeline(name="needs-the-cloud")
def needs_the_cloud(uri: str = "s3://bucket/train.csv") -> None:
    fixed = dsl.importer(artifact_uri="gs://bucket/data.txt", artifact_class=dsl.Dataset)
    count_lines(data=fixed.output)
    given = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset)
    count_lines(data=given.output)
    nested = dsl.importer(artifact_uri="hf://org/corpus", artifact_class=dsl.Dataset)
    inner(data=nested.output)  # read inside a sub-pipeline
    copy_from_gcs(src="gs://bucket/a.txt")
    fetch_table()
    custom_job(project="p")
    ray_job()
    hub_data(repo="org/name")
    read_url()


def test_every_outside_need_is_refused_up_front_one_line_each(
    compile_yaml: Callable[..., Path], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.store import RunStore
    from workbench_dsl.paths import LocalRoot

    text = compile_yaml(needs_the_cloud).read_text()
    with pytest.raises(UsageError) as err:
        execute.start(text, {}, root=LocalRoot(workbench_home))
    lines = str(err.value).splitlines()
    assert lines[0] == "cannot run 'needs-the-cloud' locally (10 problems, nothing ran):", lines
    msg = "\n".join(lines)
    assert (
        "task importer imports gs://bucket/data.txt, which count-lines reads: that needs a "
        "Google Cloud Storage bucket, and a local run imports local files only "
        "(import a local file instead)" in msg
    )
    assert "imports s3://bucket/train.csv, which count-lines-2 reads: that needs an S3 " in msg
    assert "(give -p uri=PATH, a local file)" in msg
    assert "task importer-3 imports hf://org/corpus, which count-lines reads: that needs " in msg
    assert "task copy-from-gcs runs gsutil: it needs Google Cloud Storage (gsutil)" in msg
    assert (
        "task fetch-table downloads https://data.example.org/t.csv with curl: it needs the "
        "network" in msg
    )
    assert (
        "task custom-job runs python module no_such_launcher_pkg.custom_job, which only image "
        "gcr.io/example/launchers:1 holds" in msg
    )
    assert "task custom-job: unknown placeholder {{$.pipeline_persistent_resource_id}}: " in msg
    assert "Vertex AI fills it" in msg
    assert "task ray-job installs 'codeflare-sdk==0.32.2', a client of a Kubernetes cluster " in msg
    assert "task hub-data calls load_dataset(), which downloads from the Hugging Face Hub" in msg
    assert "task read-url reads https://example.org/iris.csv: it needs the network" in msg
    assert RunStore(LocalRoot(workbench_home).runs_db).list_runs() == []


def test_cli_refuses_with_exit_2_and_runs_once_the_import_is_local(
    compile_yaml: Callable[..., Path], workbench_home: Path, tmp_path: Path
) -> None:
    import json

    from workbench_dsl.cli.app import app

    @dsl.pipeline(name="import-then-count")
    def p(uri: str = "gs://bucket/train.csv") -> int:
        imp = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset)
        return count_lines(data=imp.output).output

    path = compile_yaml(p)
    r = CliRunner().invoke(app, ["run", str(path)])
    assert r.exit_code == 2, r.output
    assert "imports gs://bucket/train.csv, which count-lines reads" in r.output
    assert "give -p uri=PATH, a local file" in r.output
    local = tmp_path / "train.csv"
    local.write_text("a\nb\nc\n")
    r = CliRunner().invoke(app, ["run", str(path), "-p", f"uri={local}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["outputs"] == {"Output": 3}


def test_a_remote_import_only_named_still_runs(run_kfp: Callable[..., Any]) -> None:
    """A task that reads only ``.uri``/``.metadata`` needs no download (nor does an unused one)."""

    @dsl.pipeline(name="name-only")
    def p() -> str:
        imp = dsl.importer(
            artifact_uri="oci://registry.example/model:1",
            artifact_class=dsl.Dataset,
            metadata={"source": "registry"},
        )
        dsl.importer(artifact_uri="gs://bucket/unused.txt", artifact_class=dsl.Dataset)
        return describe(data=imp.output).output

    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "oci://registry.example/model:1|registry"


def test_field_paths_are_empty_for_absent_metadata_and_unset_without_a_field_path(
    run_kfp: Callable[..., Any],
) -> None:
    """What a pod gives (settles KFP's ``create_pod_metadata_complex``).

    The driver adds an env var only for each configured ``fieldPathAsEnv`` entry
    (kubeflow/pipelines ``backend/src/v2/driver/k8s.go``); the kubelet resolves a
    label or annotation the pod lacks to ``""`` (KFP's own
    ``samples/v2/pipeline_with_pod_metadata.py`` expects exactly that). A task with
    no field path has no such variable at all: ``os.getenv`` gives None.
    """
    from kfp import kubernetes

    @dsl.component(base_image="python:3.11")
    def env_of(name: str) -> str:
        import os

        return repr(os.getenv(name))

    @dsl.component(base_image="python:3.11")
    def join(a: str, b: str) -> str:
        return f"{a}|{b}"

    @dsl.pipeline(name="pod-metadata")
    def p() -> str:
        with_path = env_of(name="TEAM")
        kubernetes.use_field_path_as_env(with_path, "TEAM", "metadata.labels['team']")
        without = env_of(name="TEAM")
        return join(a=with_path.output, b=without.output).output

    summary = run_kfp(p)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "''|None"


def test_every_placeholder_a_local_run_fills_is_known() -> None:
    from workbench_dsl.engine.placeholders import RUN_CONSTANTS, unknown_placeholders

    known = [
        "{{$}}",
        "{{$.inputs.parameters['n']}}",
        '{{$.inputs.artifacts["d"].path}}',
        "{{$.inputs.artifacts['d'].metadata['k']}}",
        "{{$.outputs.parameters['o'].output_file}}",
        "{{$.outputs.artifacts['m'].uri}}",
        "{{$.outputs.output_file}}",
        "{{$.inputs.parameters['n'].json_escape[1]}}",
        *(f"{{{{$.{c}}}}}" for c in RUN_CONSTANTS),
    ]
    nested = {"IfPresent": {"InputName": "n", "Then": {"Concat": ["-", "{{$.vertex_only}}"]}}}
    container = {"command": ["sh", "-c", " ".join(known)], "args": [nested]}
    assert unknown_placeholders(container) == ["{{$.vertex_only}}"]


def test_args_without_a_command_run_the_image_entrypoint_unless_they_start_with_a_program(
    compile_yaml: Callable[..., Path], run_kfp: Callable[..., Any], workbench_home: Path
) -> None:
    from workbench_dsl.engine import execute
    from workbench_dsl.paths import LocalRoot

    @dsl.container_component
    def entrypoint(text: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="gcr.io/example/tool", args=[text, "--fast"])

    @dsl.container_component
    def say(text: str, out: dsl.OutputPath(str)) -> dsl.ContainerSpec:  # type: ignore[valid-type]
        return dsl.ContainerSpec(
            image="alpine:3.19", args=["sh", "-c", 'printf "%s" "$0" > "$1"', text, out]
        )

    @dsl.pipeline(name="image-entrypoint")
    def uses_entrypoint() -> None:
        entrypoint(text="hi")

    @dsl.pipeline(name="args-as-command")
    def args_only() -> str:
        return say(text="hi").outputs["out"]

    text = compile_yaml(uses_entrypoint).read_text()
    with pytest.raises(UsageError, match=r"it runs the entrypoint of image gcr\.io/example/tool"):
        execute.start(text, {}, root=LocalRoot(workbench_home))
    summary = run_kfp(args_only)
    assert summary.status == "SUCCEEDED", summary.failures
    assert summary.outputs["Output"] == "hi"


def test_local_paths_and_loopback_servers_are_not_remote() -> None:
    from workbench_dsl.engine.remote_needs import remote_scheme_need

    assert remote_scheme_need("/data/x.csv") is None
    assert remote_scheme_need("file:///data/x.csv") is None
    assert remote_scheme_need("http://127.0.0.1:8080/v2/models/m/infer") is None
    assert remote_scheme_need("http://localhost:5000") is None
    assert remote_scheme_need("http://[::1]:9000/x") is None
    assert remote_scheme_need("https://example.org/x") == "the network"
    assert remote_scheme_need("gs://b/x") == "a Google Cloud Storage bucket"
    assert remote_scheme_need("weird://b/x") == "a weird:// service"
