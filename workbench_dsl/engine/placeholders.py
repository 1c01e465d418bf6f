"""KFP command-line placeholders, resolved from an ExecutorInput the way a cluster resolves them.

The full set a compiled component can hold (``kfp.dsl.placeholders`` and the
constants in ``kfp.dsl``): ``{{$}}``, input parameters, input and output
artifact ``path``/``uri``/``metadata`` (and ``metadata['key']``), a whole list
of input artifacts, output parameter files, the executor output file, the
pipeline job/task names and uuids, ``{{$.pipeline_root}}``, the workspace,
``json_escape[N]`` forms, and the structured ``Concat``/``IfPresent`` elements.
Placeholders inside longer strings (f-strings) are resolved in place.

Upstream: ``kfp/local/placeholder_utils.py`` (kfp.local) and the KFP backend's
launcher. Where they differ we follow the cluster: numbers print as Go's
``FormatFloat(v, 'f', -1)`` does (``3.0`` -> ``3``), lists and structs as compact
JSON (``[1,2]``, safe in a shell), and a placeholder for an
input that is absent resolves to ``null`` as kfp.local does.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# One placeholder: "{{$}}" or "{{$.<path>}}"; paths never contain braces.
_PLACEHOLDER = re.compile(r"\{\{\$(\.[^{}]*?)?\}\}")
_JSON_ESCAPE = re.compile(r"^(.*?)\.?json_escape\[(\d+)\]$")
_IO = re.compile(
    r"""^(inputs|outputs)\.(parameters|artifacts)\[['"](?P<name>.+?)['"]\]"""
    r"""(?:\.(?P<attr>[A-Za-z_]+))?(?:\[['"](?P<key>.+?)['"]\])?$"""
)
WORKSPACE_MOUNT_PATH = "/kfp-workspace"
# The run-level placeholders ``_one`` fills; with ``{{$}}``, inputs and outputs, all there are.
RUN_CONSTANTS = frozenset(
    {
        "pipeline_job_name",
        "pipeline_job_resource_name",
        "pipeline_job_uuid",
        "pipeline_task_name",
        "pipeline_task_uuid",
        "pipeline_root",
        "workspace_path",
        "pipeline_job_create_time_utc",
        "pipeline_job_schedule_time_utc",
    }
)
_IO_ATTRS = {None, "path", "uri", "name", "metadata", "output_file"}
# Each escape can double a value (every backslash escaped again): json_escape[60] of
# 'a"b' took 24 GB before the kernel killed the engine. KFP's SDK writes at most [1].
MAX_JSON_ESCAPES = 4
ESCAPES_WORDS = f"json_escape[N] takes N of at most {MAX_JSON_ESCAPES}"
_MAX_ESCAPED = 64 << 20
_NAMESPACE = uuid.UUID("6c1b8f5e-9f7e-4d55-9a55-1b7f0c4d2e11")


def placeholder_texts(container: dict[str, Any]) -> list[str]:
    """Every string of a container's ``command``/``args``, structured elements opened."""
    texts: list[str] = []
    todo: list[Any] = [*(container.get("command") or []), *(container.get("args") or [])]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if item.lstrip().startswith(('{"Concat"', '{"IfPresent"')):
                try:
                    todo.append(json.loads(item))
                    continue
                except ValueError:
                    pass
            texts.append(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return texts


def unknown_placeholders(container: dict[str, Any]) -> list[str]:
    """The placeholders in a container's ``command``/``args`` a local run cannot fill."""
    out: list[str] = []
    for text in placeholder_texts(container):
        for m in _PLACEHOLDER.finditer(text):
            path = (m.group(1) or ".")[1:]
            escapes = 0
            while escaped := _JSON_ESCAPE.match(path):
                path = escaped.group(1)
                escapes += int(escaped.group(2)) if len(escaped.group(2)) < 6 else 10**6
            io = _IO.match(path)
            known = (
                path in ("", "outputs.output_file", "outputMetadataUri")
                or path in RUN_CONSTANTS
                or (io is not None and io["attr"] in _IO_ATTRS)
            )
            if (not known or escapes > MAX_JSON_ESCAPES) and m.group(0) not in out:
                out.append(m.group(0))
    return out


@dataclass(frozen=True)
class RunContext:
    """The run-level values some placeholders name (job/task names, uuids, roots).

    Attributes:
        job_name: ``{{$.pipeline_job_name}}`` and ``{{$.pipeline_job_resource_name}}``.
        job_uuid: ``{{$.pipeline_job_uuid}}``, stable for the run.
        task_name: ``{{$.pipeline_task_name}}``: the task's own name in its DAG.
        task_uuid: ``{{$.pipeline_task_uuid}}``, stable for the task in the run.
        pipeline_root: ``{{$.pipeline_root}}``.
        workspace: what ``{{$.workspace_path}}`` and ``/kfp-workspace`` become.
        create_time_utc: ``{{$.pipeline_job_create_time_utc}}`` (and schedule time).
    """

    job_name: str
    job_uuid: str
    task_name: str
    task_uuid: str
    pipeline_root: str
    workspace: str
    create_time_utc: str

    @classmethod
    def for_task(
        cls,
        *,
        run_id: str,
        task: str,
        pipeline: str | None,
        pipeline_root: str,
        workspace: str,
        create_time_utc: str,
    ) -> RunContext:
        """Derive the names KFP would show from the run id and the qualified task name.

        ``task`` is qualified (``for-loop-2[1]/train``); KFP's task name is the last
        part without the iteration index (``train``). The job's resource name is
        ``<pipeline>-<run_id>`` unless the run id already starts with the pipeline's
        name. The uuids are name-based, so every attempt of a task sees the same ones.
        """
        last = task.rsplit("/", 1)[-1]
        task_name = re.sub(r"\[[^\]]*\]$", "", last) or last
        if pipeline and not run_id.startswith(f"{pipeline}-"):
            job_name = f"{pipeline}-{run_id}"
        else:
            job_name = run_id
        job_uuid = uuid.uuid5(_NAMESPACE, run_id)
        return cls(
            job_name=job_name,
            job_uuid=str(job_uuid),
            task_name=task_name,
            task_uuid=str(uuid.uuid5(job_uuid, task)),
            pipeline_root=pipeline_root,
            workspace=workspace,
            create_time_utc=create_time_utc,
        )


def format_value(value: Any) -> str:
    """A parameter value as a cluster writes it on a command line."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    return json.dumps(value, separators=(",", ":"))


class Resolver:
    """Resolves every placeholder of one attempt against its ExecutorInput."""

    def __init__(self, executor_input: dict[str, Any], ctx: RunContext) -> None:
        self.ctx = ctx
        self.executor_input = executor_input
        self._dollar: str | None = None
        self.used_workspace = False

    # -- the ExecutorInput itself ---------------------------------------------

    def resolve_executor_input(self) -> dict[str, Any]:
        """Resolve placeholders inside string parameter values (f-strings, job names).

        The compiler passes ``f"{x}-bar"`` and ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``
        as constant strings holding placeholders; on a cluster the driver resolves
        them before the task starts. Returns a new dict when anything changed.
        """
        for _ in range(5):  # a value may name another value that holds a placeholder
            params = self.executor_input.get("inputs", {}).get("parameterValues") or {}
            pending = {k: v for k, v in params.items() if isinstance(v, str) and "{{$" in v}
            resolved = {k: self.resolve_string(v) for k, v in pending.items()}
            if resolved == pending:
                break
            new = dict(self.executor_input)
            new["inputs"] = {**new["inputs"], "parameterValues": {**params, **resolved}}
            self.executor_input = new
            self._dollar = None
        return self.executor_input

    # -- command lines ----------------------------------------------------------

    def resolve_command(self, elements: list[str]) -> list[str]:
        """Resolve a container's ``command + args`` into the argv to run."""
        argv: list[str] = []
        for element in elements:
            for piece in self._expand_struct(element):
                argv.append(self.resolve_string(piece))
        return argv

    def _expand_struct(self, element: Any) -> list[str]:
        if isinstance(element, str):
            stripped = element.lstrip()
            if stripped.startswith(('{"Concat"', '{"IfPresent"')):
                try:
                    element = json.loads(element)
                except ValueError:
                    return [element]
            else:
                return [element]
        result = self._struct(element)
        if result is None:
            return []
        return result if isinstance(result, list) else [result]

    def _struct(self, node: Any) -> str | list[str] | None:
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            out: list[str] = []
            for item in node:
                value = self._struct(item)
                if isinstance(value, list):
                    out.extend(value)
                elif value is not None:
                    out.append(value)
            return out
        if isinstance(node, dict) and "Concat" in node:
            parts = [self._struct(p) for p in node["Concat"]]
            return "".join("".join(p) if isinstance(p, list) else p for p in parts if p is not None)
        if isinstance(node, dict) and "IfPresent" in node:
            spec = node["IfPresent"]
            branch = spec.get("Then") if self._present(spec["InputName"]) else spec.get("Else")
            return None if branch is None else self._struct(branch)
        raise ValueError(f"unknown structured placeholder {json.dumps(node)[:200]}")

    def _present(self, name: str) -> bool:
        inputs = self.executor_input.get("inputs", {})
        if (inputs.get("parameterValues") or {}).get(name) is not None:
            return True
        arts = (inputs.get("artifacts") or {}).get(name)
        return bool(arts and arts.get("artifacts"))

    # -- single placeholders ------------------------------------------------------

    def resolve_string(self, text: str) -> str:
        """Replace every ``{{$...}}`` in ``text`` in one pass (values are never re-scanned)."""
        if "{{$" not in text and WORKSPACE_MOUNT_PATH not in text:
            return text
        if WORKSPACE_MOUNT_PATH in text:
            self.used_workspace = True
            text = text.replace(WORKSPACE_MOUNT_PATH, self.ctx.workspace)
        return _PLACEHOLDER.sub(lambda m: self._one(m.group(1) or ""), text)

    def _one(self, path: str) -> str:
        path = path[1:] if path.startswith(".") else path
        escaped = _JSON_ESCAPE.match(path)
        if escaped:
            times = int(escaped.group(2))
            if times > MAX_JSON_ESCAPES:
                raise ValueError(f"{{{{$.{path}}}}}: {ESCAPES_WORDS}")
            value = self._one(escaped.group(1))
            for _ in range(times):
                value = json.dumps(value)[1:-1]
                if len(value) > _MAX_ESCAPED:
                    raise ValueError(f"{{{{$.{path}}}}}: the escaped value passed 64 MiB")
            return value
        if path == "":
            if self._dollar is None:
                self._dollar = json.dumps(self.executor_input)
            return self._dollar
        constants = {
            "pipeline_job_name": self.ctx.job_name,
            "pipeline_job_resource_name": self.ctx.job_name,
            "pipeline_job_uuid": self.ctx.job_uuid,
            "pipeline_task_name": self.ctx.task_name,
            "pipeline_task_uuid": self.ctx.task_uuid,
            "pipeline_root": self.ctx.pipeline_root,
            "workspace_path": self.ctx.workspace,
            "pipeline_job_create_time_utc": self.ctx.create_time_utc,
            "pipeline_job_schedule_time_utc": self.ctx.create_time_utc,
        }
        if path in constants:
            self.used_workspace = self.used_workspace or path == "workspace_path"
            return constants[path]
        outputs = self.executor_input.get("outputs", {})
        if path in ("outputs.output_file", "outputMetadataUri"):
            return str(outputs.get("outputFile", ""))
        m = _IO.match(path)
        if not m:
            raise ValueError(f"unknown placeholder {{{{$.{path}}}}}")
        side, kind, name, attr, key = m.group(1), m.group(2), m["name"], m["attr"], m["key"]
        section = self.executor_input.get(side, {})
        if kind == "parameters":
            if side == "inputs":
                return format_value((section.get("parameterValues") or {}).get(name))
            param = (section.get("parameters") or {}).get(name) or {}
            return str(param.get("outputFile", "null"))
        artifacts = ((section.get("artifacts") or {}).get(name) or {}).get("artifacts") or []
        if attr is None:
            return json.dumps(artifacts)
        if not artifacts:
            return "null"
        art = artifacts[0]
        if attr in ("path", "uri"):
            return str(art.get("uri", ""))
        if attr == "name":
            return str(art.get("name", ""))
        if attr == "metadata":
            meta = art.get("metadata") or {}
            return json.dumps(meta) if key is None else format_value(meta.get(key))
        raise ValueError(f"unknown placeholder {{{{$.{path}}}}}")
