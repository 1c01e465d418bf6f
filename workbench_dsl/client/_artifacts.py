"""A past run's artifact as a notebook sees it: where it is, what it holds, and ``.load()``.

``load()`` re-hashes the stored file or directory and compares it with the digest
the engine recorded when the artifact was stored, before anything reads it: a
changed or missing artifact is an error, never silently different data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from workbench_dsl.errors import WorkbenchError

#: Artifact types whose values live in their metadata (KFP writes no file for them).
METRICS_TYPES = (
    "system.Metrics",
    "system.ClassificationMetrics",
    "system.SlicedClassificationMetrics",
)


class ArtifactChanged(WorkbenchError):
    """A stored artifact is missing or no longer has the digest recorded with its run."""

    exit_code = 1


@dataclass(frozen=True)
class ArtifactRef:
    """One input or output artifact of a past task (or a pipeline output).

    Attributes:
        name: The artifact's name.
        type: Its KFP schema title (``system.Dataset``, ``system.Model``, ...).
        uri: Where the engine stored it.
        path: The local path to read (None for a remote URI).
        metadata: What the producing task recorded (``Metrics`` hold their values here).
        sha256: The digest recorded when it was stored (None when nothing was written).
        size: Bytes stored.
    """

    name: str
    type: str
    uri: str
    path: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    size: int | None = None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ArtifactRef:
        """From a task's stored artifact entry or a run's output view."""
        t = rec.get("type")
        type_name = t.get("schemaTitle") if isinstance(t, dict) else t
        uri = str(rec.get("uri") or "")
        return cls(
            name=str(rec.get("name") or ""),
            type=str(type_name or "system.Artifact"),
            uri=uri,
            path=_local_path(uri),
            metadata=dict(rec.get("metadata") or {}),
            sha256=rec.get("sha256"),
            size=rec.get("size"),
        )

    def verify(self) -> Path:
        """The artifact's path once its content matches its recorded digest.

        Raises:
            ArtifactChanged: it is missing, remote, or its content changed.
        """
        from workbench_dsl.engine.cas import digest

        if self.path is None:
            raise ArtifactChanged(f"artifact {self.name} is remote ({self.uri}); nothing to load")
        if not self.sha256:
            raise ArtifactChanged(
                f"artifact {self.name} was never written by its task (only its metadata exists)"
            )
        p = Path(self.path)
        try:
            found, _ = digest(p)
        except FileNotFoundError:
            raise ArtifactChanged(
                f"artifact {self.name} is gone from {p} (the local root was cleaned?)"
            ) from None
        if found != self.sha256:
            raise ArtifactChanged(
                f"artifact {self.name} at {p} changed since its run stored it "
                f"(sha256 {found[:12]}..., recorded {self.sha256[:12]}...)"
            )
        return p

    def load(self) -> Any:
        """The artifact's content, checked against its digest first.

        ``Metrics`` -> a dict of its values; a CSV or Parquet ``Dataset`` -> a pandas
        DataFrame; a ``Model`` -> the model, through the flavor it was saved with
        (an MLflow model directory through MLflow, else the pickled or torch file);
        anything else -> its verified :class:`~pathlib.Path`.
        """
        if self.type in METRICS_TYPES and not self.sha256:
            return dict(self.metadata)
        path = self.verify()
        if self.type == "system.Dataset":
            return _load_dataset(path)
        if self.type == "system.Model":
            return _load_model(path, self.metadata)
        return path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "uri": self.uri,
            "path": self.path,
            "metadata": self.metadata,
            "sha256": self.sha256,
            "size": self.size,
        }


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return urlparse(uri).path
    if "://" in uri:
        return None
    return uri or None


def _single_file(path: Path) -> Path | None:
    if path.is_file():
        return path
    files = [f for f in path.rglob("*") if f.is_file()]
    return files[0] if len(files) == 1 else None


def _load_dataset(path: Path) -> Any:
    """A DataFrame for Parquet (by its magic bytes) or CSV; the path for anything else."""
    import pandas as pd

    file = _single_file(path)
    if file is None:
        return path
    with open(file, "rb") as f:
        head = f.read(4096)
    if head[:4] == b"PAR1":
        return pd.read_parquet(file)
    if file.suffix.lower() in (".csv", ".tsv", ".txt", "") and _looks_like_csv(head):
        return pd.read_csv(file, sep="\t" if file.suffix.lower() == ".tsv" else ",")
    return path


def _looks_like_csv(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    first = text.splitlines()[0] if text else ""
    return bool(first) and "\x00" not in text and ("," in first or "\t" in first)


def _load_model(path: Path, metadata: dict[str, Any]) -> Any:
    mlmodel = path / "MLmodel" if path.is_dir() else None
    if mlmodel is not None and mlmodel.is_file():
        return _load_mlflow(path, mlmodel)
    from workbench_dsl.runtime._flavor import load_model_artifact

    # Any flavor but "auto": the object is wanted as saved (pickle or torch archive),
    # whether or not it is something a registry could serve.
    del metadata
    obj, _ = load_model_artifact(path, "pyfunc")
    return obj


def _load_mlflow(path: Path, mlmodel: Path) -> Any:
    """An MLflow model through its own flavor (sklearn, pytorch), else as a pyfunc."""
    import yaml

    flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors") or {}
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(path))
    if "pytorch" in flavors:
        import mlflow.pytorch

        return mlflow.pytorch.load_model(str(path))
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path))
