"""Previews of a task's artifacts: the first rows of a table, metrics as numbers and charts,
Markdown rendered with raw HTML turned off, HTML only inside a sandboxed frame.

Only files the run store records are read, and only their first bytes: a preview
never loads a whole dataset. A preview never follows a link: every file is opened
component by component from the artifact's own path with ``O_NOFOLLOW`` (a link
inside a directory artifact to ``/proc/self/environ`` would otherwise show the
dashboard's own environment, its token included), and only regular files are read.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from workbench_dsl.ui.charts import Series, bars, xy_chart

ROWS = 20
MAX_COLUMNS = 40
TEXT_BYTES = 4096
MARKDOWN_BYTES = 512 * 1024
_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
_IMAGE_SUFFIX = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
REMOTE = ("gs://", "s3://", "minio://", "http://", "https://", "abfs://", "oci://")


@dataclass
class Preview:
    """What the page shows for one artifact (``kind`` picks the template block)."""

    kind: str  # table | metrics | classification | markdown | html | text | files | note
    note: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None
    numbers: list[tuple[str, Any]] = field(default_factory=list)
    chart: Markup | None = None
    html: Markup | None = None
    text: str = ""
    files: list[tuple[str, int]] = field(default_factory=list)


def local_path(artifact: dict[str, Any]) -> Path | None:
    """The artifact's file or directory on this machine, or None (remote, absent)."""
    uri = str(artifact.get("uri") or artifact.get("path") or "")
    if not uri or uri.startswith(REMOTE):
        return None
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    p = Path(uri)
    return p if p.exists() else None


def schema_title(artifact: dict[str, Any]) -> str:
    t = artifact.get("type")
    if isinstance(t, dict):
        return str(t.get("schemaTitle") or "")
    return str(t or "")


_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_inside(top: Path, rel: str = "") -> int:
    """A file descriptor for ``top/rel``, following no link on the way (``top`` included).

    Raises:
        OSError: a component is a link (``ELOOP``), ``rel`` leaves ``top`` (``EACCES``),
            or the path is not there.
    """
    inner = Path(rel)
    parts = [p for p in inner.parts if p not in ("", ".")]
    if inner.is_absolute() or ".." in parts:
        raise OSError(errno.EACCES, "outside the artifact", str(rel))
    fd = os.open(top, _NO_FOLLOW | (os.O_DIRECTORY if parts else 0))
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = os.open(part, _NO_FOLLOW | (0 if last else os.O_DIRECTORY), dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(top: Path, rel: str = "") -> io.BufferedReader:
    """A regular file inside an artifact, opened as :func:`open_inside` does, for reading."""
    fd = open_inside(top, rel)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EISDIR, "not a regular file", str(top / rel))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def is_link(path: Path) -> bool:
    return os.path.islink(path)


def image_mime(path: Path, head: bytes | None = None) -> str | None:
    """The image type of a file (PNG, JPEG, GIF, WebP; never SVG, which can carry script)."""
    head = _head(path, 16) if head is None else head
    for magic, mime in _MAGIC.items():
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return _IMAGE_SUFFIX.get(path.suffix.lower()) if not head else None


def preview(artifact: dict[str, Any]) -> Preview:
    """The preview of one artifact record (as the run store keeps it)."""
    title = schema_title(artifact)
    meta = artifact.get("metadata") or {}
    if title == "system.Metrics":
        return _metrics(meta)
    if title == "system.ClassificationMetrics":
        return _classification(meta)
    uri = str(artifact.get("uri") or "")
    if uri.startswith(REMOTE):
        return Preview("note", note=f"stored remotely at {uri}; not previewed here")
    path = local_path(artifact)
    if path is None:
        if artifact.get("absent"):
            return Preview("note", note="the task wrote no file for this output")
        return Preview("note", note="the file is gone (deleted from the local root?)")
    try:
        if is_link(path):
            return Preview("note", note="the output is a link; links are never followed")
        if path.is_dir():
            return _files(path)
        if title == "system.Markdown" or path.suffix.lower() in (".md", ".markdown"):
            return _markdown(path)
        if title == "system.HTML" or path.suffix.lower() in (".html", ".htm"):
            return Preview("html")
        return _file(path, str(meta.get("format") or ""))
    except OSError as e:
        return Preview("note", note=f"not previewed: {e.strerror or e}")


def _metrics(meta: dict[str, Any]) -> Preview:
    numbers = [(k, v) for k, v in sorted(meta.items()) if _is_number(v)]
    if not numbers:
        return Preview("note", note="no metrics logged")
    chart = bars([(k, float(v)) for k, v in numbers]) if len(numbers) <= 30 else None
    return Preview("metrics", numbers=numbers, chart=chart)


def _classification(meta: dict[str, Any]) -> Preview:
    out = Preview("classification")
    cm = meta.get("confusionMatrix") or {}
    labels = [str(s.get("displayName", i)) for i, s in enumerate(cm.get("annotationSpecs") or [])]
    if labels:
        out.columns = ["actual \\ predicted", *labels]
        out.rows = [
            [labels[i] if i < len(labels) else str(i), *(str(v) for v in r.get("row", []))]
            for i, r in enumerate(cm.get("rows") or [])
        ]
    roc = meta.get("confidenceMetrics") or []
    points = sorted(
        (float(p.get("falsePositiveRate", 0)), float(p.get("recall", 0)))
        for p in roc
        if isinstance(p, dict)
    )
    if points:
        out.chart = xy_chart(
            [Series("ROC", points, style="line"), Series("ROC points", points)],
            x_label="false positive rate",
            y_label="true positive rate",
        )
    if not labels and not points:
        return Preview("note", note="no classification metrics logged")
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _files(path: Path) -> Preview:
    found: list[tuple[str, int]] = []
    regular: list[str] = []
    for dirpath, dirs, names in os.walk(path):  # never descends into a linked directory
        linked = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
        for n in sorted([*names, *linked]):
            p = Path(dirpath) / n
            rel = str(p.relative_to(path))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                found.append((f"{rel} (a link, not followed)", 0))
            else:
                found.append((rel, st.st_size))
                regular.append(rel)
            if len(found) >= 50:
                return Preview("files", files=found, note="first 50 files")
    if len(found) == 1 and regular:
        inner = _file(path, "", regular[0])
        if inner.kind in ("table", "text"):
            inner.note = f"{found[0][0]} " + inner.note
            return inner
    return Preview("files", files=found)


def _markdown(path: Path) -> Preview:
    from markdown_it import MarkdownIt

    text = _head(path, MARKDOWN_BYTES).decode("utf-8", errors="replace")
    # html=False: raw HTML in the document is shown as text; links with javascript: and
    # other unsafe schemes are dropped by markdown-it's own link validation.
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    return Preview("markdown", html=Markup(md.render(text)))


def _head(path: Path, n: int, rel: str = "") -> bytes:
    with open_regular(path, rel) as f:
        return f.read(n)


def _file(top: Path, fmt: str, rel: str = "") -> Preview:
    with open_regular(top, rel) as f:
        head = f.read(256 * 1024)
        size = os.fstat(f.fileno()).st_size
    path = top / rel if rel else top
    suffix = path.suffix.lower()
    if image_mime(path, head):
        return Preview("image")
    if head.startswith(b"PAR1") or suffix == ".parquet" or fmt == "parquet":
        return _parquet(top, rel)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
        if len(head) == 256 * 1024:  # a multi-byte character cut at the end
            try:
                text = head[:-4].decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                text = ""
    if not text and head:
        return Preview("note", note=f"binary file, {size} bytes")
    if fmt == "jsonl" or suffix in (".jsonl", ".ndjson") or _looks_jsonl(text):
        table = _jsonl(text)
        if table is not None:
            return table
    if fmt in ("csv", "tsv") or suffix in (".csv", ".tsv") or _looks_csv(text):
        table = _csv(text, "\t" if fmt == "tsv" or suffix == ".tsv" else None)
        if table is not None:
            if size <= len(head):
                table.total_rows = max(0, sum(1 for ln in text.splitlines() if ln.strip()) - 1)
            return table
    shown = text[:TEXT_BYTES]
    return Preview(
        "text",
        text=shown,
        note=f"first {len(shown)} of {size} bytes" if size > len(shown.encode()) else "",
    )


def _looks_csv(text: str) -> bool:
    lines = text.splitlines()[:5]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",\t;|")
    except csv.Error:
        return False
    counts = {len(r) for r in csv.reader(lines, dialect)}
    return len(counts) == 1 and counts.pop() > 1


def _looks_jsonl(text: str) -> bool:
    first = text.lstrip()[:1]
    if first != "{":
        return False
    try:
        json.loads(text.splitlines()[0])
    except (ValueError, IndexError):
        return False
    return True


def _csv(text: str, delimiter: str | None) -> Preview | None:
    lines = text.splitlines()
    if not lines:
        return None
    sample = "\n".join(lines[: ROWS + 1])
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=delimiter or ",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if delimiter == "\t" else csv.excel
    reader = csv.reader(io.StringIO(sample), dialect)
    rows = list(reader)
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    note = f"{len(header)} columns" + (
        f", first {MAX_COLUMNS} shown" if len(header) > MAX_COLUMNS else ""
    )
    return Preview(
        "table",
        columns=header[:MAX_COLUMNS],
        rows=[r[:MAX_COLUMNS] for r in body[:ROWS]],
        note=note,
    )


def _jsonl(text: str) -> Preview | None:
    records = []
    for line in text.splitlines()[:ROWS]:
        try:
            v = json.loads(line)
        except ValueError:
            break
        if not isinstance(v, dict):
            return None
        records.append(v)
    if not records:
        return None
    columns: list[str] = []
    for r in records:
        for k in r:
            if k not in columns:
                columns.append(str(k))
    columns = columns[:MAX_COLUMNS]
    return Preview(
        "table",
        columns=columns,
        rows=[[_cell(r.get(c)) for c in columns] for r in records],
        note="JSON lines",
    )


def _cell(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _parquet(top: Path, rel: str = "") -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return Preview("note", note="a Parquet file (install pyarrow to preview it)")
    with open_regular(top, rel) as source:
        return _parquet_table(pq.ParquetFile(source))


def _parquet_table(f: Any) -> Preview:
    batch = next(f.iter_batches(batch_size=ROWS), None)
    if batch is None:
        return Preview("table", columns=list(f.schema_arrow.names), total_rows=0, note="Parquet")
    cols = batch.schema.names[:MAX_COLUMNS]
    data = batch.to_pydict()
    rows = [[_cell(data[c][i]) for c in cols] for i in range(batch.num_rows)]
    return Preview(
        "table",
        columns=list(cols),
        rows=rows,
        total_rows=f.metadata.num_rows,
        note=f"Parquet, {len(batch.schema.names)} columns",
    )
