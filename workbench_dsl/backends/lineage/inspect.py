"""What a dataset artifact holds, for lineage facets: size, files, rows and the column schema.

Reads only what it must: Parquet footers (through ``pyarrow`` when it is installed),
the first lines of CSV/TSV/JSON-lines files for the schema, and a byte scan for the
row count of text files up to :data:`MAX_SCAN` bytes (larger ones get no row count).
Anything it cannot read is simply left out; it never raises.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_SCAN = 64 * 1024 * 1024
_SAMPLE = 64 * 1024
_SAMPLE_ROWS = 200


@dataclass
class DataStats:
    """What :func:`inspect_path` found (None: unknown)."""

    size: int | None = None
    file_count: int | None = None
    row_count: int | None = None
    fields: list[dict[str, Any]] = field(default_factory=list)
    format: str | None = None


# json.dumps with options builds an encoder per call; one built once writes the same text.
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def short_json(value: Any, limit: int = 1000) -> str:
    """A parameter value as text for a facet, cut at ``limit`` characters."""
    text = value if isinstance(value, str) else _ENCODER.encode(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def inspect_path(path: str | os.PathLike[str], *, tabular: bool = True) -> DataStats:
    """Size and file count of a file or directory; rows and schema when it is tabular."""
    p = Path(path)
    stats = DataStats()
    try:
        if p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file()]
            stats.size = sum(f.stat().st_size for f in files)
            stats.file_count = len(files)
            if tabular and len(files) == 1:
                _tabular(files[0], stats)
        elif p.is_file():
            stats.size = p.stat().st_size
            stats.file_count = 1
            if tabular:
                _tabular(p, stats)
    except OSError:
        pass
    return stats


def _tabular(p: Path, stats: DataStats) -> None:
    try:
        with open(p, "rb") as f:
            head = f.read(_SAMPLE)
    except OSError:
        return
    if head.startswith(b"PAR1"):
        _parquet(p, stats)
        return
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the sample's end is fine; binary data is not.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return
    lines = text.splitlines()
    if len(head) == _SAMPLE and lines:
        lines = lines[:-1]  # the last line of the sample may be cut
    if not lines:
        return
    if lines[0].lstrip().startswith("{"):
        _jsonl(lines, stats)
    else:
        _csv(lines, stats)
    if stats.format is not None and stats.size is not None and stats.size <= MAX_SCAN:
        stats.row_count = _count_lines(p) - (1 if stats.format in ("csv", "tsv") else 0)


def _count_lines(p: Path) -> int:
    n = 0
    last = b"\n"
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (0 if last == b"\n" else 1)


def _csv(lines: list[str], stats: DataStats) -> None:
    sample = "\n".join(lines[: _SAMPLE_ROWS + 1])
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",\t;|")
    except csv.Error:
        return
    rows = list(csv.reader(io.StringIO(sample), dialect))
    if len(rows) < 1 or len(rows[0]) < 2:
        return
    header = rows[0]
    body = [r for r in rows[1:] if len(r) == len(header)]
    if any(not h.strip() for h in header) or len(set(header)) != len(header):
        return
    # A header is names, not numbers.
    if all(_type_of([h]) in ("int", "double") for h in header):
        return
    stats.format = "tsv" if dialect.delimiter == "\t" else "csv"
    stats.fields = [
        {"name": h, "type": _type_of([r[i] for r in body]), "ordinal_position": i + 1}
        for i, h in enumerate(header)
    ]


def _type_of(values: list[str]) -> str:
    vals = [v.strip() for v in values if v.strip() != ""]
    if not vals:
        return "string"
    for kind, test in (("int", int), ("double", float)):
        try:
            for v in vals:
                test(v)
            return kind
        except ValueError:
            continue
    if all(v.lower() in ("true", "false") for v in vals):
        return "boolean"
    return "string"


def _jsonl(lines: list[str], stats: DataStats) -> None:
    names: dict[str, str] = {}
    for line in lines[:_SAMPLE_ROWS]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(row, dict):
            return
        for k, v in row.items():
            names.setdefault(k, _json_type(v))
    if names:
        stats.format = "jsonl"
        stats.fields = [
            {"name": k, "type": t, "ordinal_position": i + 1}
            for i, (k, t) in enumerate(names.items())
        ]


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, (list, dict)):
        return "array" if isinstance(v, list) else "struct"
    return "string"


def _parquet(p: Path, stats: DataStats) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        stats.format = "parquet"
        return
    try:
        meta = pq.ParquetFile(p)
        stats.row_count = int(meta.metadata.num_rows)
        stats.fields = [
            {"name": f.name, "type": str(f.type), "ordinal_position": i + 1}
            for i, f in enumerate(meta.schema_arrow)
        ]
        stats.format = "parquet"
    except Exception:
        return
