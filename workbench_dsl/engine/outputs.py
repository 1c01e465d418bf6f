"""Collect an attempt's outputs into KFP's ExecutorOutput shape, as the cluster launcher does.

The executor output file (``executor_output.json``) has the highest priority;
output parameters it does not hold are read from their output files as raw
strings (the scheduler types them by the component's output definitions);
output artifacts are those of the ExecutorInput, with a URI or metadata the
executor output gives merged over them.
"""

from __future__ import annotations

from typing import Any

from workbench_dsl.engine import params as ptypes


class OutputError(Exception):
    """The attempt ended without the outputs its component declares (one line)."""


_LEGACY_KINDS = ("stringValue", "intValue", "doubleValue")


def collect_outputs(executor_input: dict[str, Any]) -> dict[str, Any]:
    """The ExecutorOutput of a finished attempt.

    Raises:
        OutputError: the executor output file is not JSON, or an output
            parameter was never written.
    """
    outputs = executor_input.get("outputs") or {}
    written = _read_executor_output(outputs.get("outputFile"))
    params: dict[str, Any] = dict(written.get("parameterValues") or {})
    for name, value in (written.get("parameters") or {}).items():  # KFP v1 form
        if name not in params and isinstance(value, dict):
            params[name] = next((value[k] for k in _LEGACY_KINDS if k in value), value)
    missing = []
    for name, spec in (outputs.get("parameters") or {}).items():
        if name in params:
            continue
        path = str((spec or {}).get("outputFile") or "")
        try:
            with open(path, encoding="utf-8") as f:
                params[name] = f.read()
        except OSError:
            missing.append((name, path))
    if missing:
        names = ", ".join(f"'{n}'" for n, _ in missing)
        plural = "s" if len(missing) > 1 else ""
        raise OutputError(
            f"output parameter{plural} {names} never written (expected at {missing[0][1]})"
        )
    artifacts: dict[str, Any] = {}
    given = written.get("artifacts") or {}
    for name, listed in (outputs.get("artifacts") or {}).items():
        declared = (listed or {}).get("artifacts") or []
        updates = ((given.get(name) or {}).get("artifacts")) or []
        merged = []
        for i, art in enumerate(declared):
            entry = {k: art[k] for k in ("name", "uri", "metadata") if k in art}
            entry.setdefault("metadata", {})
            if i < len(updates):
                upd = updates[i]
                if upd.get("uri"):
                    entry["uri"] = upd["uri"]
                entry["metadata"] = {**entry["metadata"], **(upd.get("metadata") or {})}
                if upd.get("custom_path"):
                    entry["custom_path"] = upd["custom_path"]
            merged.append(entry)
        artifacts[name] = {"artifacts": merged}
    return {"parameterValues": params, "artifacts": artifacts}


def _read_executor_output(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return {}
    if not text.strip():
        return {}
    try:
        data = ptypes.loads(text, around=3)  # parameterValues/artifacts and their names
    except ValueError as exc:
        raise OutputError(f"the executor output file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OutputError(f"the executor output file {path} does not hold a JSON object")
    return data
