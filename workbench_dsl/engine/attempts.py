"""One attempt's inputs and outputs: the ExecutorInput the task gets, and what it left behind.

Before an attempt: the component's input definitions type the resolved
values (KFP's ``5.0`` becomes the ``int`` the function expects), defaults are
filled in, and a KFP ``ExecutorInput`` is built with absolute local paths
under the attempt's private work directory.

After a successful attempt: output parameters are typed by the output
definitions, and each output artifact (file or directory; where the
component put it, ``custom_path`` included) is moved into the
content-addressed store, which records its sha256 and size.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from workbench_dsl.engine import params as ptypes
from workbench_dsl.engine.cas import ArtifactStore, LinkError

_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class OutputProblem(ValueError):
    """An output that does not match the component's declaration."""


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,100}(?:\[\d{1,9}\])?")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_PATH = 1024  # of a task's relative path, well inside PATH_MAX (4096) with the root's


def safe_path(qname: str) -> str:
    """A task's qualified name as a relative path (``for-loop-2[1]/train`` -> ``for-loop-2.1/train``).

    Two tasks never share a path, and a path never leaves the folder it is put in:
    a segment that is not a plain name (KFP's task names are ``[a-z0-9-]``) is
    cut to 100 characters, anything but letters, digits, ``.``, ``_`` and ``-``
    becomes ``_``, and ``~`` with a digest of the whole segment is appended, so
    ``e-ü`` and ``e-é``, ``..`` and a 300-character name all get names of their own.
    A path longer than 1,024 characters (DAGs nested very deep) becomes a digest of
    the whole name and the task's own segment.
    """
    out = []
    for segment in qname.split("/"):
        if _PLAIN_SEGMENT.fullmatch(segment):
            out.append(segment.replace("[", ".").replace("]", ""))
            continue
        digest = hashlib.sha256(segment.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        name = _UNSAFE.sub("_", segment[:100])
        out.append(f"{'_' + name[1:] if name.startswith('.') else name}~{digest}")
    if sum(len(s) + 1 for s in out) > _MAX_PATH:  # DAGs nested deep: keep the task's own name
        digest = hashlib.sha256(qname.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"~{digest}/{out[-1]}"
    return "/".join(out)


def typed_inputs(
    component: dict[str, Any], params: dict[str, Any], absent: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Executor input parameters: typed, with defaults; and errors (one line each)."""
    defs = (component.get("inputDefinitions") or {}).get("parameters") or {}
    out: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in params.items():
        d = defs.get(name)
        if d is None:
            out[name] = value  # injected f-string inputs ("pipelinechannel--...")
            continue
        try:
            out[name] = ptypes.coerce(value, d.get("parameterType"))
        except ptypes.ParameterTypeError as e:
            errors.append(f"input {name!r} {e}")
    for name, d in defs.items():
        if name in out:
            continue
        has_default, default = ptypes.default_of(d)
        if has_default:
            out[name] = default
        elif d.get("parameterType") == ptypes.TASK_FINAL_STATUS:
            errors.append(f"input {name!r} (task final status) has no producer")
        elif not d.get("isOptional"):
            why = " (its producer did not run or gave no value)" if name in absent else ""
            errors.append(f"required input {name!r} has no value{why}")
    return out, errors


def check_artifacts(
    component: dict[str, Any], arts: dict[str, list[dict[str, Any]]], absent: list[str]
) -> list[str]:
    defs = (component.get("inputDefinitions") or {}).get("artifacts") or {}
    errors = []
    for name, d in defs.items():
        if name not in arts and not d.get("isOptional"):
            why = " (its producer did not run)" if name in absent else ""
            errors.append(f"required input artifact {name!r} has no value{why}")
    return errors


def _runtime_artifact(art: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": art.get("name", ""),
        "type": art.get("type") or {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"},
        "uri": art.get("uri", ""),
        "metadata": ptypes.as_delivered(art.get("metadata") or {}),
    }


def executor_input(
    component: dict[str, Any],
    params: dict[str, Any],
    arts: dict[str, list[dict[str, Any]]],
    workdir: Path,
) -> dict[str, Any]:
    """KFP's ExecutorInput for one attempt, every path absolute and under ``workdir``."""
    in_defs = (component.get("inputDefinitions") or {}).get("artifacts") or {}
    inputs_arts: dict[str, Any] = {}
    for name, listed in arts.items():
        d = in_defs.get(name) or {}
        chosen = listed if d.get("isArtifactList") or name not in in_defs else listed[:1]
        inputs_arts[name] = {"artifacts": [_runtime_artifact(a) for a in chosen]}
    out_defs = component.get("outputDefinitions") or {}
    outputs_dir = workdir / "outputs"
    params_dir = workdir / "params"
    outputs: dict[str, Any] = {
        "parameters": {
            name: {"outputFile": str(params_dir / name)}
            for name in (out_defs.get("parameters") or {})
        },
        "artifacts": {
            name: {
                "artifacts": [
                    {
                        "name": name,
                        "type": d.get("artifactType") or {"schemaTitle": "system.Artifact"},
                        "uri": str(outputs_dir / name),
                        "metadata": {},
                    }
                ]
            }
            for name, d in (out_defs.get("artifacts") or {}).items()
        },
        "outputFile": str(outputs_dir / "executor_output.json"),
    }
    os.makedirs(outputs_dir)  # creates the fresh work directory too
    os.mkdir(params_dir)
    delivered = {name: ptypes.as_delivered(value) for name, value in params.items()}
    return {"inputs": {"parameterValues": delivered, "artifacts": inputs_arts}, "outputs": outputs}


def output_parameters(component: dict[str, Any], executor_output: dict[str, Any]) -> dict[str, Any]:
    """Typed output parameters; raises :class:`OutputProblem` for one that does not fit."""
    defs = (component.get("outputDefinitions") or {}).get("parameters") or {}
    given = executor_output.get("parameterValues") or {}
    out: dict[str, Any] = {}
    for name, value in given.items():
        ptype = (defs.get(name) or {}).get("parameterType")
        try:
            out[name] = ptypes.output_value(value, ptype)
        except ptypes.ParameterTypeError as e:
            raise OutputProblem(f"output {name!r} {e}") from None
    return out


def local_path(uri: str) -> str | None:
    """The local path an artifact URI names, or None for a remote one."""
    if uri.startswith("file://"):
        return urlparse(uri).path
    if _REMOTE.match(uri):
        return None
    return uri


def store_outputs(
    component: dict[str, Any],
    executor_output: dict[str, Any],
    workdir: Path,
    store: ArtifactStore,
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Move a finished attempt's output artifacts into the store; returns them and notices."""
    defs = (component.get("outputDefinitions") or {}).get("artifacts") or {}
    given = executor_output.get("artifacts") or {}
    result: dict[str, list[dict[str, Any]]] = {}
    notices: list[str] = []
    workdir_s = str(workdir.resolve())
    for name, d in defs.items():
        listed = ((given.get(name) or {}).get("artifacts")) or [
            {"name": name, "uri": str(workdir / "outputs" / name), "metadata": {}}
        ]
        arts = []
        for art in listed:
            uri = str(art.get("uri") or "")
            entry: dict[str, Any] = {
                "name": art.get("name") or name,
                "type": d.get("artifactType") or {"schemaTitle": "system.Artifact"},
                "metadata": art.get("metadata") or {},
            }
            src = art.get("custom_path") or local_path(uri)
            if src is None:
                entry.update(uri=uri, sha256=None, size=None)
                notices.append(
                    f"artifact {name} has the remote URI {uri}; it is recorded, not stored"
                )
            elif os.path.lexists(src):
                inside = os.path.realpath(src).startswith(workdir_s + os.sep)
                try:
                    stored = store.ingest(Path(src), name, move=inside)
                except LinkError as e:
                    raise OutputProblem(f"output artifact {name!r} at {src}: {e}") from None
                entry.update(uri=stored.uri, sha256=stored.sha256, size=stored.size)
            else:
                # Declared but never written (a Metrics artifact often only has metadata).
                entry.update(uri=uri, sha256=None, size=0, absent=True)
            arts.append(entry)
        result[name] = arts
    return result, notices


def import_artifact(
    uri: str, type_schema: dict[str, Any], metadata: dict[str, Any], store: ArtifactStore
) -> tuple[dict[str, Any], str | None]:
    """What an importer yields: a local file or tree copied into the store, or a remote URI."""
    entry: dict[str, Any] = {
        "name": "artifact",
        "type": type_schema or {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"},
        "metadata": metadata,
    }
    path = local_path(uri)
    if path is None:
        entry.update(uri=uri, sha256=None, size=None)
        return entry, (
            f"importer: {uri} is remote; it is passed on as a URI, and a task that reads its "
            f"path will not find it on this machine"
        )
    if not os.path.lexists(path):
        raise FileNotFoundError(f"importer: no file or directory at {path}")
    name = os.path.basename(path.rstrip("/")) or "artifact"
    try:  # the importer names this path on purpose: a link there is followed, once, here
        stored = store.ingest(Path(path), name, move=False, follow=True)
    except LinkError as e:
        raise OutputProblem(f"importer: {path}: {e}") from None
    entry.update(uri=stored.uri, sha256=stored.sha256, size=stored.size)
    return entry, None
