"""Cache keys: what makes two task executions the same, so the second can reuse the first.

The key is the sha256 of a canonical JSON document holding

* the component's interface (input and output definitions),
* its executor (image, command, args, env as written in the spec) and the
  environment the platform document adds (``fieldPathAsEnv`` values),
* the resolved, typed input parameter values,
* for each input artifact, its *content digest* (sha256 of the file or
  tree), its type and its metadata -- never its name or URI, so a renamed or
  re-produced identical artifact still hits and a changed one never does
  (kubeflow/pipelines#7939, #11615). A remote artifact that cannot be hashed
  here is keyed by its URI.

The same key decides, on ``workbench runs resume``, whether a task that
completed before the interruption is still valid.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_VERSION = 1


def artifact_identity(art: dict[str, Any]) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": (art.get("type") or {}).get("schemaTitle"),
        "metadata": art.get("metadata") or {},
    }
    if art.get("sha256"):
        ident["sha256"] = art["sha256"]
    elif art.get("absent"):
        ident["absent"] = True
    else:
        ident["uri"] = art.get("uri")
    return ident


# The same text as json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str),
# without building an encoder per task.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def task_key(
    component: dict[str, Any],
    executor: dict[str, Any],
    extra_env: dict[str, str],
    params: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
) -> str:
    """The cache key of one task execution."""
    container = dict(executor.get("container") or {})
    container.pop("resources", None)  # where it runs, not what it computes
    doc = {
        "v": KEY_VERSION,
        "interface": {
            "inputs": component.get("inputDefinitions") or {},
            "outputs": component.get("outputDefinitions") or {},
        },
        "executor": {**executor, "container": container} if container else executor,
        "env": extra_env,
        "parameters": params,
        "artifacts": {k: [artifact_identity(a) for a in v] for k, v in artifacts.items()},
    }
    text = _KEY_ENCODER.encode(doc)
    return hashlib.sha256(text.encode()).hexdigest()


class KeyCache:
    """:func:`task_key` for the tasks of one run, each executor and interface encoded once.

    Thousands of tasks of a run share a few components and executors (whose command
    holds the component's whole source): their part of the canonical document is
    encoded once and the rest is written around it, in the same sorted order, so
    every key is exactly :func:`task_key`'s.
    """

    def __init__(self) -> None:
        # (id(component), id(executor)) -> (text, component, executor): the dicts are
        # kept so their ids stay theirs while the run lasts.
        self._fixed: dict[tuple[int, int], tuple[str, Any, Any]] = {}

    def key(
        self,
        component: dict[str, Any],
        executor: dict[str, Any],
        extra_env: dict[str, str],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
    ) -> str:
        ids = (id(component), id(executor))
        fixed = self._fixed.get(ids)
        if fixed is None:
            fixed = self._fixed[ids] = (_fixed_text(component, executor), component, executor)
        enc = _KEY_ENCODER.encode
        arts = (
            enc({k: [artifact_identity(a) for a in v] for k, v in artifacts.items()})
            if artifacts
            else "{}"
        )
        env = enc(extra_env) if extra_env else "{}"
        text = (
            f'{{"artifacts":{arts},"env":{env},{fixed[0]},'
            f'"parameters":{enc(params)},"v":{KEY_VERSION}}}'
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _fixed_text(component: dict[str, Any], executor: dict[str, Any]) -> str:
    """``"executor":...,"interface":...`` of the key's document (adjacent when sorted)."""
    container = dict(executor.get("container") or {})
    container.pop("resources", None)
    enc = _KEY_ENCODER.encode
    ex = {**executor, "container": container} if container else executor
    interface = {
        "inputs": component.get("inputDefinitions") or {},
        "outputs": component.get("outputDefinitions") or {},
    }
    return f'"executor":{enc(ex)},"interface":{enc(interface)}'
