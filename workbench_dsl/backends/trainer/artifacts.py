"""Moving artifacts between KFP's object store and TrainJob / Katib trial pods, with fsspec.

On a cluster a launcher's inputs and outputs are KFP artifact URIs
(``minio://``, ``s3://``, ``gs://``). The pods that do the work download the
inputs from those URIs and upload their outputs to them; the launcher then
fetches the outputs into its own local output paths, which KFP uploads as
usual. ``minio://bucket/key`` is KFP's name for an S3 bucket on its MinIO
service: it is read through s3fs with ``$WORKBENCH_ARTIFACT_ENDPOINT`` (default
KFP's ``http://minio-service.kubeflow:9000``). Credentials come from the usual
environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, workload identity).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Env var: the S3 endpoint for ``minio://`` (and ``s3://`` when set).
ENDPOINT = "WORKBENCH_ARTIFACT_ENDPOINT"
DEFAULT_MINIO_ENDPOINT = "http://minio-service.kubeflow:9000"


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem and in-filesystem path for an artifact URI."""
    import fsspec

    endpoint = os.environ.get(ENDPOINT)
    if uri.startswith("minio://"):
        fs = fsspec.filesystem(
            "s3", client_kwargs={"endpoint_url": endpoint or DEFAULT_MINIO_ENDPOINT}
        )
        return fs, uri[len("minio://") :]
    if uri.startswith("s3://") and endpoint:
        fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": endpoint})
        return fs, uri[len("s3://") :]
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def download(uri: str, local: str | Path) -> None:
    """Copy the file or directory at ``uri`` to ``local``."""
    fs, path = filesystem(uri)
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    if fs.isdir(path):
        fs.get(path.rstrip("/") + "/", str(local), recursive=True)
    else:
        fs.get(path, str(local))


def upload(local: str | Path, uri: str) -> None:
    """Copy the file or directory ``local`` to ``uri`` (nothing when it does not exist)."""
    local = Path(local)
    if not local.exists():
        return
    fs, path = filesystem(uri)
    if local.is_dir():
        fs.put(str(local).rstrip("/") + "/", path, recursive=True)
    else:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.put(str(local), path)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])
