"""Model registry: evaluated models registered as versions, with aliases and tags (MLflow).

One small interface, two places: locally the registry is MLflow on SQLite under
the local root (``mlflow.db``, artifacts in ``mlartifacts/``); on a cluster it is
an MLflow tracking server URL (baked into the compiled step from
``workbench.toml``). Both are the same MLflow client code, so the Kubernetes
side of this backend is only a different tracking URI.
See https://mlflow.org/docs/latest/ml/model-registry/

Importing this module is cheap; MLflow is imported when a registry is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench_dsl.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench_dsl.paths import LocalRoot

#: Version tags written by workbench (the ``workbench.`` prefix keeps them apart).
TAG_RUN_ID = "workbench.run_id"
TAG_PIPELINE = "workbench.pipeline"
TAG_STEP = "workbench.step"
TAG_FLAVOR = "workbench.flavor"

FLAVORS = ("sklearn", "pytorch", "pyfunc")
#: A Hugging Face Transformers directory (``save_pretrained``), registered as it is.
TRANSFORMERS = "transformers"

#: Tags of a ``@register(beats_champion=...)`` evaluation, on its run and its version.
TAG_ALIAS = "workbench.champion.alias"
TAG_VERSION = "workbench.champion.version"
TAG_VERDICT = "workbench.champion.verdict"  # passed | failed | no-champion
TAG_MARGINS = "workbench.champion.margins"
TAG_CHAMPION_METRICS = "workbench.champion.metrics"
TAG_CHALLENGER_METRICS = "workbench.challenger.metrics"
TAG_SUMMARY = "workbench.champion.summary"
PASSED, FAILED, NO_CHAMPION = "passed", "failed", "no-champion"


class RegistryUnreachable(WorkbenchError):
    """The tracking server did not answer (the registry is not the user's input: exit 1)."""

    exit_code = 1


class AliasRefused(Exception):
    """An alias may not be set on this version (it was rejected)."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version as a person sees it."""

    name: str
    version: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    source: str = ""
    created_at: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "mlflow_run_id": self.run_id,
            "source": self.source,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class ModelSummary:
    """A registered model: its name, newest version and aliases."""

    name: str
    latest_version: str | None
    aliases: dict[str, str]
    versions: int
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
            "versions": self.versions,
            "updated_at": self.updated_at,
        }


class Registry(Protocol):
    """What steps, approvals and the CLI need from a model registry."""

    uri: str

    def log_evaluation(
        self,
        *,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        params: dict[str, str],
        metrics: dict[str, float],
    ) -> str:
        """Record one evaluation as a tracking run; returns its run id."""
        ...

    def register(
        self,
        *,
        name: str,
        model: Any,
        flavor: str,
        run_id: str,
        tags: dict[str, str],
        pip_requirements: list[str] | None = None,
    ) -> VersionInfo:
        """Log ``model`` (an object, or a saved MLflow model directory) and register a version."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...

    def get_version(self, name: str, version: str) -> VersionInfo: ...

    def versions(self, name: str) -> list[VersionInfo]: ...

    def models(self) -> list[ModelSummary]: ...

    def find_versions(self, tag: str, value: str) -> list[VersionInfo]:
        """Versions of any model whose tag ``tag`` equals ``value``."""
        ...

    def resolve(self, model_uri: str) -> VersionInfo:
        """The version ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` names."""
        ...

    def download_uri(self, name: str, version: str) -> str:
        """Where the version's model files are (``file://...``, ``s3://...``)."""
        ...

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points to; None when the model or the alias does not exist."""
        ...

    def download(self, name: str, version: str, dst: Path) -> Path:
        """Copy the version's MLflow model directory under ``dst``; returns its path."""
        ...

    def evaluations(self, run_id: str) -> dict[str, dict[str, float]]:
        """The metrics each ``@register`` step of pipeline run ``run_id`` logged, by step."""
        ...


def champion_view(tags: dict[str, str]) -> dict[str, Any] | None:
    """The champion comparison a version's tags record (None: it had none), as
    ``workbench models show --json`` and ``workbench ui`` show it."""
    import json

    state = tags.get(TAG_VERDICT)
    if not state:
        return None

    def load(key: str) -> dict[str, Any]:
        try:
            out = json.loads(tags.get(key) or "{}")
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}

    return {
        "verdict": state,
        "alias": tags.get(TAG_ALIAS) or None,
        "version": tags.get(TAG_VERSION) or None,
        "margins": load(TAG_MARGINS),
        "champion_metrics": load(TAG_CHAMPION_METRICS),
        "challenger_metrics": load(TAG_CHALLENGER_METRICS),
        "summary": tags.get(TAG_SUMMARY) or "",
    }


def local_tracking_uri(root: LocalRoot) -> str:
    """The SQLite registry under the local root."""
    return f"sqlite:///{root.mlflow_db}"


def local_artifact_location(root: LocalRoot) -> str:
    """Where a local registry keeps model files: ``mlartifacts/`` beside ``mlflow.db``."""
    return root.mlflow_artifacts.resolve().as_uri()


def open_registry(tracking_uri: str | None = None, *, root: LocalRoot | None = None) -> Registry:
    """The registry at ``tracking_uri``; default the local SQLite one under ``root``.

    Args:
        tracking_uri: An MLflow tracking URI (``sqlite:///...``, ``http://mlflow:5000``).
        root: The local root used when no URI is given (default: this process's).
    """
    from workbench_dsl.backends.registry.mlflow_registry import MlflowRegistry
    from workbench_dsl.paths import local_root

    if tracking_uri:
        return MlflowRegistry(tracking_uri)
    root = (root or local_root()).ensure()
    return MlflowRegistry(local_tracking_uri(root), artifact_location=local_artifact_location(root))


def open_configured_registry(
    tracking_uri: str | None = None, *, root: LocalRoot | None = None
) -> Registry:
    """The registry people act on: ``tracking_uri``, else ``[registry] tracking_uri`` in
    workbench.toml, else the local SQLite one under ``root`` (what ``workbench models``,
    ``workbench approve`` and ``workbench ui`` use)."""
    from workbench_dsl.config import load_config

    uri = tracking_uri or load_config().get("registry", "tracking_uri")
    return open_registry(uri, root=root)


def ui_command(root: LocalRoot) -> str:
    """The command that opens the MLflow UI on the local registry."""
    db = Path(root.mlflow_db)
    return (
        f"mlflow ui --backend-store-uri sqlite:///{db} "
        f"--default-artifact-root {root.mlflow_artifacts} --host 127.0.0.1 --port 5000"
    )
