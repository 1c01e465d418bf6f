"""The request ``workbench endpoints predict`` sends: ``--data`` read and shaped for the protocol.

V1 (``{"instances": [...]}``) or the Open Inference Protocol V2 (``{"inputs": [...]}``,
https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_data(data: str) -> Any:
    """``--data`` as a JSON value: the text itself, or the file after ``@``."""
    from workbench_dsl.errors import UsageError

    text = data
    if data.startswith("@"):
        try:
            text = Path(data[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
            raise UsageError(
                f"--data {data}: cannot read {data[1:]}: {why}; give JSON or @file.json"
            ) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError(f"--data is not JSON: {e}") from None


def request_body(value: Any, protocol: str) -> Any:
    """A whole request as is; instances wrapped for V1, or flattened into one V2 input."""
    if isinstance(value, dict):
        return value  # a whole V1 or V2 request
    if not isinstance(value, list):
        value = [value]
    if protocol == "v1":
        return {"instances": value}
    flat, shape = _flatten(value)
    kinds = {type(x) for x in flat}
    datatype = "BYTES" if str in kinds else "FP64" if float in kinds else "INT64"
    if kinds == {bool}:
        datatype = "BOOL"
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": flat}]}


def _flatten(value: Any) -> tuple[list[Any], list[int]]:
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    flat: list[Any] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                walk(item)
        else:
            flat.append(v)

    walk(value)
    return flat, shape
