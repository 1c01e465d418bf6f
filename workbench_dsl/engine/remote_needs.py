"""What a pipeline needs from outside this machine: remote artifacts, cloud services, the network.

A local run has the host's files and programs and nothing else. The preflight
refuses, before the first task starts, a task whose spec says it needs more,
one line each, naming what it needs:

* an importer whose artifact URI is remote (``gs://``, ``s3://``, ``oci://``,
  ``hf://``, ``https://``, ...): the engine imports local files only;
* a container command that runs a cloud's command-line tool (``gsutil``,
  ``gcloud``, ``bq``, ``aws``, ``az``) or downloads with ``curl``/``wget``;
* ``python -m MODULE`` where the module is not installed here (the Google Cloud
  Pipeline Components launchers live only in their image);
* a component that installs the client of a remote service (``codeflare-sdk``
  makes Ray clusters on Kubernetes, ``google-cloud-aiplatform`` calls Vertex AI,
  ``minio`` talks to an object store, ...);
* embedded Python source that fetches a URL literal or a Hugging Face Hub
  repository (``load_dataset``, ``snapshot_download``, ``hf_hub_download``).

Each rule reads what the spec itself says (URIs, commands, requirements,
source), never the pipeline's name.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from workbench_dsl.engine.lightweight import Plan, plan_executor
from workbench_dsl.engine.spec import PipelineSpec, component_ref, is_dag

_SCHEMES = {
    "gs": "a Google Cloud Storage bucket",
    "s3": "an S3 bucket",
    "s3a": "an S3 bucket",
    "minio": "a MinIO object store",
    "oci": "an OCI registry (the model is an image there)",
    "hf": "the Hugging Face Hub",
    "http": "the network",
    "https": "the network",
    "abfs": "Azure storage",
    "abfss": "Azure storage",
    "wasbs": "Azure storage",
    "az": "Azure storage",
    "hdfs": "an HDFS cluster",
}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")

# Command-line tools whose only job is a cloud service.
_CLOUD_TOOLS = {
    "gsutil": "Google Cloud Storage (gsutil)",
    "gcloud": "Google Cloud (gcloud)",
    "bq": "BigQuery (bq)",
    "aws": "AWS (the aws CLI)",
    "az": "Azure (the az CLI)",
}
_DOWNLOADERS = {"curl", "wget"}

# Packages that are clients of one remote service: installing one says the task talks to it.
_SERVICE_PACKAGES = {
    "codeflare-sdk": "a Kubernetes cluster with KubeRay (codeflare-sdk creates Ray clusters there)",
    "google-cloud-aiplatform": "Vertex AI (a Google Cloud project)",
    "google-cloud-pipeline-components": "Vertex AI (a Google Cloud project)",
    "google-cloud-storage": "a Google Cloud Storage bucket",
    "gcsfs": "a Google Cloud Storage bucket",
    "google-cloud-bigquery": "BigQuery (a Google Cloud project)",
    "pandas-gbq": "BigQuery (a Google Cloud project)",
    "minio": "an S3/MinIO object store",
    "s3fs": "an S3 bucket",
    "sagemaker": "Amazon SageMaker (an AWS account)",
}
# Python modules that run only against a remote service (``python -m MODULE``).
_SERVICE_MODULES = {
    "google_cloud_pipeline_components": "Vertex AI (Google Cloud Pipeline Components launch jobs "
    "there)",
}
# Hugging Face calls that download from the Hub (a builder name or local path is local).
_HUB_CALLS = {"load_dataset", "snapshot_download", "hf_hub_download"}
_LOCAL_BUILDERS = {
    "csv",
    "json",
    "parquet",
    "text",
    "arrow",
    "pandas",
    "sql",
    "generator",
    "imagefolder",
    "audiofolder",
    "webdataset",
}
_QUIET_CALLS = {"print", "debug", "info", "warning", "error", "exception", "log", "write"}
# String methods that test or rewrite a URI's text (``uri.replace("gs://", "/gcs/")``,
# ``uri.startswith("s3://")``: how components map a URI to its mount); they fetch nothing.
_TEXT_CALLS = {
    "startswith", "endswith", "replace", "removeprefix", "removesuffix", "split", "rsplit",
    "partition", "rpartition", "find", "rfind", "index", "rindex", "count", "strip",
    "lstrip", "rstrip",
}  # fmt: skip


def remote_scheme_need(uri: str) -> str | None:
    """What reading ``uri`` needs, or None for a local path or this machine's own servers.

    ``file://`` is local; so is a server on loopback (``http://127.0.0.1:8080``: a
    local endpoint this machine serves, e.g. one a ``@serve`` step started).
    """
    m = _URI.match(uri)
    if not m or m.group(1).lower() == "file":
        return None
    try:
        host = urlsplit(uri).hostname or ""
    except ValueError:  # a malformed authority: not a server this machine runs
        host = ""
    if host in _LOOPBACK or host.startswith("127."):
        return None
    return _SCHEMES.get(m.group(1).lower(), f"a {m.group(1)}:// service")


def importer_problems(spec: PipelineSpec, params: dict[str, Any]) -> list[str]:
    """Importers of a remote URI (constant, or from a parameter known now) a task reads.

    An importer only records its URI; on a cluster the launcher of each task that takes
    the artifact downloads it before the task starts (``backend/src/v2/component/
    launcher_v2.go``, ``downloadArtifacts``). Here nothing can download it, so a task
    that reads the content (its ``.path``, an ``InputPath``, or the object handed on)
    cannot run; one that only reads ``.uri``, ``.name`` or ``.metadata`` can.
    """
    out = []
    for dag_tasks, in_root in _dags(spec):
        for name, task in dag_tasks.items():
            executor = spec.executors.get(_executor_label(spec, task)) or {}
            imp = executor.get("importer")
            if not isinstance(imp, dict):
                continue
            src = imp.get("artifactUri") or {}
            how = ""
            if "runtimeParameter" in src:
                pname = str(src["runtimeParameter"])
                ref = ((task.get("inputs") or {}).get("parameters") or {}).get(pname) or {}
                uri, how = _param_value(ref, params, in_root)
            else:
                uri = src.get("constant")
                if isinstance(uri, dict):
                    uri = uri.get("stringValue")
            if not isinstance(uri, str) or (need := remote_scheme_need(uri)) is None:
                continue
            readers = sorted(
                {c for c, t, i in _consumers(spec, dag_tasks, name) if _reads_content(spec, t, i)}
            )
            if not readers:
                continue
            fix = f"give -p {how}=PATH, a local file" if how else "import a local file instead"
            out.append(
                f"task {name} imports {uri}, which {', '.join(readers)} reads: that needs "
                f"{need}, and a local run imports local files only ({fix})"
            )
    return out


def _consumers(
    spec: PipelineSpec, dag_tasks: dict[str, Any], producer: str
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``(task, its spec, input name)`` for each task fed ``producer``'s artifact, into sub-DAGs."""
    todo: list[tuple[dict[str, Any], str, str]] = [(dag_tasks, "task", producer)]
    while todo:
        tasks, kind, ref_name = todo.pop()
        for name, task in tasks.items():
            arts = (task.get("inputs") or {}).get("artifacts") or {}
            for input_name, ref in arts.items():
                if kind == "task":
                    fed = (ref.get("taskOutputArtifact") or {}).get("producerTask") == ref_name
                else:
                    fed = ref.get("componentInputArtifact") == ref_name
                if not fed:
                    continue
                comp = spec.components.get(component_ref(task)) or {}
                if is_dag(comp):
                    todo.append((comp["dag"].get("tasks") or {}, "input", input_name))
                else:
                    yield name, task, input_name


_METADATA_ATTRS = {"uri", "name", "metadata", "schema_title", "schema_version", "TYPE_NAME"}


def _reads_content(spec: PipelineSpec, task: dict[str, Any], input_name: str) -> bool:
    """Whether the task reads the artifact's file (not only its URI, name or metadata)."""
    executor = spec.executors.get(_executor_label(spec, task)) or {}
    if "container" not in executor:
        return False
    plan = plan_executor(executor)
    if plan.kind == "python" and plan.source and plan.function:
        return _function_reads(plan.source, plan.function, input_name)
    text = json.dumps(executor["container"])
    return (
        "{{$}}" in text
        or re.search(rf"inputs\.artifacts\[\\?['\"]{re.escape(input_name)}\\?['\"]\]\.path", text)
        is not None
    )


def _function_reads(source: str, function: str, param: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True
    fn = next(
        (
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function
        ),
        None,
    )
    if fn is None:
        return True
    arg = next((a for a in [*fn.args.args, *fn.args.kwonlyargs] if a.arg == param), None)
    if arg is None:
        return True
    if arg.annotation is not None and "Path" in ast.unparse(arg.annotation):
        return True  # InputPath: the task gets the file's path
    parents = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Name) and node.id == param):
            continue
        up = parents.get(node)
        if isinstance(up, ast.Attribute) and up.attr in _METADATA_ATTRS:
            continue
        if isinstance(up, ast.Compare):  # `if artifact is not None`
            continue
        return True
    return False


def executor_problems(who: str, plan: Plan) -> list[str]:
    """Cloud tools, downloads, service modules and service clients in one executor."""
    out = []
    for pkg in plan.requirements.packages:
        need = _SERVICE_PACKAGES.get(_package_name(pkg))
        if need:
            out.append(f"task {who} installs {pkg!r}, a client of {need}, which a local run lacks")
    if plan.kind == "container":
        out += _command_problems(who, list(plan.argv), plan.image)
    elif plan.kind == "python" and plan.source:
        out += _source_problems(who, plan.source)
    return out


def _command_problems(who: str, argv: list[str], image: str) -> list[str]:
    out = []
    module = _python_module(argv)
    if module is not None:
        top = module.split(".")[0]
        if top in _SERVICE_MODULES or importlib.util.find_spec(top) is None:
            need = _SERVICE_MODULES.get(top)
            what = f": it needs {need}" if need else ""
            out.append(
                f"task {who} runs python module {module}, which only image {image} holds{what}"
            )
    for words in simple_commands(argv):
        program = os.path.basename(words[0])
        if program in _CLOUD_TOOLS:
            out.append(
                f"task {who} runs {program}: it needs {_CLOUD_TOOLS[program]}, which a local "
                f"run lacks"
            )
        elif program in _DOWNLOADERS:
            urls = [w for w in words[1:] if re.match(r"^https?://", w) and remote_scheme_need(w)]
            if urls:
                out.append(f"task {who} downloads {urls[0]} with {program}: it needs the network")
    return list(dict.fromkeys(out))


def _source_problems(who: str, source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        fname = (
            fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
        )
        if fname in _QUIET_CALLS or (isinstance(fn, ast.Attribute) and fname in _TEXT_CALLS):
            continue
        args = [*node.args, *(k.value for k in node.keywords)]
        if fname in _HUB_CALLS and not _local_dataset(fname, node):
            out.append(
                f"task {who} calls {fname}(), which downloads from the Hugging Face Hub: it "
                f"needs the network"
            )
            continue
        for a in args:
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                # Only storage and web schemes: `sqlite:///x.db` or `redis://` name other things.
                m = _URI.match(a.value.strip())
                need = remote_scheme_need(a.value.strip()) if m and m.group(1) in _SCHEMES else None
                if need:
                    out.append(f"task {who} reads {a.value.strip()}: it needs {need}")
                    break
    return list(dict.fromkeys(out))


def _local_dataset(fname: str, call: ast.Call) -> bool:
    """``load_dataset("csv", data_files=...)`` or a local directory: nothing is downloaded."""
    if fname != "load_dataset" or not call.args:
        return False
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value in _LOCAL_BUILDERS or first.value.startswith(("/", "."))
    return False


def _python_module(argv: list[str]) -> str | None:
    if not argv or not re.fullmatch(r"python(\d(\.\d+)?)?", os.path.basename(argv[0])):
        return None
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1] if "{{" not in argv[i + 1] else None
        if not arg.startswith("-"):
            return None
    return None


_SEPARATORS = re.compile(r"\n|;|&&|\|\||\||\$\(|`|\(|\)")
_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec", "command"}


def simple_commands(argv: list[str]) -> Iterator[list[str]]:
    """The simple commands of ``argv``: itself, or each command of a ``sh -c`` script."""
    shell = argv and os.path.basename(argv[0]) in ("sh", "bash", "ash", "dash", "zsh")
    flag = next((i for i, a in enumerate(argv[1:3], 1) if re.fullmatch(r"-[a-z]*c[a-z]*", a)), None)
    if not (shell and flag is not None and flag + 1 < len(argv)):
        if argv:
            yield argv
        return
    for part in _SEPARATORS.split(argv[flag + 1].replace("\\\n", " ")):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and (words[0] in _KEYWORDS or re.match(r"^\w+=", words[0])):
            words = words[1:]
        if words:
            yield words


def _package_name(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _executor_label(spec: PipelineSpec, task: dict[str, Any]) -> str:
    return str((spec.components.get(component_ref(task)) or {}).get("executorLabel") or "")


def _dags(spec: PipelineSpec) -> Iterator[tuple[dict[str, Any], bool]]:
    """The tasks of every DAG, with whether it is the root DAG."""
    yield (spec.root.get("dag") or {}).get("tasks") or {}, True
    for comp in spec.components.values():
        if is_dag(comp):
            yield comp["dag"].get("tasks") or {}, False


def _param_value(ref: dict[str, Any], params: dict[str, Any], in_root: bool) -> tuple[Any, str]:
    """A task input's value when it is known before the run: a constant or a pipeline parameter."""
    rv = ref.get("runtimeValue") or {}
    if "constant" in rv:
        value = rv["constant"]
        return (value.get("stringValue") if isinstance(value, dict) else value), ""
    src = str(ref.get("componentInputParameter") or "")
    if not in_root and src.startswith("pipelinechannel--"):
        src = src[len("pipelinechannel--") :]
        in_root = True
    if in_root and src in params:
        return params[src], src
    return None, ""
