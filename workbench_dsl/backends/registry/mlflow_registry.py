"""The registry backend on MLflow: any tracking URI, SQLite locally, a tracking server on a cluster."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench_dsl.backends.registry import (
    FLAVORS,
    TAG_RUN_ID,
    AliasRefused,
    ModelSummary,
    RegistryUnreachable,
    VersionInfo,
)

#: The version tag the approvals backend keeps its state in (read here to refuse aliases).
APPROVAL_TAG = "workbench.approval"


def _import_mlflow() -> Any:
    # MLflow phones home unless told not to; tasks and the CLI must never wait on that.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Its INFO lines ("Creating initial MLflow database tables...") are noise in a CLI.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import mlflow

    return mlflow


def _unavailable(uri: str, e: Any) -> Exception:
    """A registry that cannot be used at all, as one line: a URI scheme MLflow does not
    know is bad input; a server that does not answer is not."""
    import re

    from workbench_dsl.errors import UsageError

    hint = "check --tracking-uri or [registry] tracking_uri in workbench.toml"
    if "unsupported URI" in str(e):
        schemes = ", ".join(sorted(s for s in getattr(e, "supported_uri_schemes", []) if s))
        known = f" (MLflow knows: {schemes})" if schemes else ""
        return UsageError(f"unsupported MLflow tracking URI {uri!r}{known}; {hint}")
    text = " ".join(str(getattr(e, "message", e)).split())
    # urllib3 buries the cause ("[Errno 111] Connection refused") at the end of a long line.
    cause = re.search(r"\[Errno -?\d+\] [^'\")]+|Failed to resolve [^(]+|timed out", text)
    reason = cause.group(0).strip() if cause else text[:200]
    return RegistryUnreachable(f"cannot reach the MLflow registry at {uri}: {reason}; {hint}")


class MlflowRegistry:
    """A model registry at one MLflow tracking URI.

    Args:
        uri: The tracking (and registry) URI.
        artifact_location: Where new experiments keep their artifacts (the local
            registry puts them beside ``mlflow.db``; a server decides for itself).
    """

    def __init__(self, uri: str, *, artifact_location: str | None = None) -> None:
        self.uri = uri
        self.artifact_location = artifact_location
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            mlflow = _import_mlflow()
            with _first_use_lock(self.uri):
                # MLflow creates and migrates a new SQLite file on first use; two processes
                # doing it at once (a step and `workbench approvals list`, two parallel steps)
                # collide, so the first use of each store is serialized.
                try:
                    client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
                    client.search_experiments(max_results=1)
                    client.search_registered_models(max_results=1)
                except mlflow.exceptions.MlflowException as e:
                    raise _unavailable(self.uri, e) from e
            self._client = client
        return self._client

    # -- tracking ------------------------------------------------------------------

    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        try:
            return str(
                self.client.create_experiment(name, artifact_location=self.artifact_location)
            )
        except Exception:
            # Another task created it between the two calls.
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def log_evaluation(
        self,
        *,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        params: dict[str, str],
        metrics: dict[str, float],
    ) -> str:
        from mlflow.entities import Metric, Param, RunTag

        exp_id = self._experiment_id(experiment)
        run = self.client.create_run(exp_id, run_name=run_name, tags=tags)
        run_id = str(run.info.run_id)
        import time

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())],
            params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())],
            tags=[RunTag(k, v) for k, v in sorted(tags.items())],
        )
        self.client.set_terminated(run_id)
        return run_id

    def evaluations(self, run_id: str) -> dict[str, dict[str, float]]:
        exp_ids = [e.experiment_id for e in self.client.search_experiments()]
        if not exp_ids:
            return {}
        quoted = run_id.replace("'", "")
        runs = self.client.search_runs(
            exp_ids, filter_string=f"tags.`{TAG_RUN_ID}` = '{quoted}'", max_results=1000
        )
        out: dict[str, dict[str, float]] = {}
        for r in runs:
            step = r.data.tags.get("workbench.step") or r.info.run_name or r.info.run_id
            out[str(step)] = {k: float(v) for k, v in r.data.metrics.items()}
        return out

    # -- registering -------------------------------------------------------------------

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
        mlflow = _import_mlflow()
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mlflow.start_run(run_id=run_id):
                if isinstance(model, str | Path) and flavor == "transformers":
                    _log_transformers_dir(mlflow, Path(model))
                    model_uri = f"runs:/{run_id}/model"
                elif isinstance(model, str | Path):
                    # A model the step already saved in MLflow's format: keep it as it is.
                    mlflow.log_artifacts(str(model), "model")
                    model_uri = f"runs:/{run_id}/model"
                else:
                    model_uri = _log_object(mlflow, model, flavor, pip_requirements)
            mv = mlflow.register_model(model_uri, name, tags=tags)
        return self.get_version(name, str(mv.version))

    # -- aliases and tags -----------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str) -> None:
        mv = self.client.get_model_version(name, str(version))
        if (mv.tags or {}).get(APPROVAL_TAG) == "rejected":
            raise AliasRefused(
                f"{name} version {version} was rejected; it can never receive an alias ({alias!r})"
            )
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, value)

    # -- reading --------------------------------------------------------------------

    def get_version(self, name: str, version: str) -> VersionInfo:
        mv = self.client.get_model_version(name, str(version))
        return self._info(mv, with_run=True)

    def versions(self, name: str) -> list[VersionInfo]:
        _check_name(name)
        found = self.client.search_model_versions(f"name = '{name}'")
        if not found:
            return []
        # Search results carry no aliases; the registered model has them all.
        by_version: dict[str, list[str]] = {}
        for alias, version in (self.client.get_registered_model(name).aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        infos = [
            self._info(mv, with_run=True, aliases=by_version.get(str(mv.version), []))
            for mv in found
        ]
        return sorted(infos, key=lambda v: int(v.version), reverse=True)

    def models(self) -> list[ModelSummary]:
        out = []
        for rm in self.client.search_registered_models(max_results=1000):
            versions = self.client.search_model_versions(f"name = '{rm.name}'")
            numbers = sorted(int(v.version) for v in versions)
            out.append(
                ModelSummary(
                    name=rm.name,
                    latest_version=str(numbers[-1]) if numbers else None,
                    aliases={k: str(v) for k, v in sorted((rm.aliases or {}).items())},
                    versions=len(numbers),
                    updated_at=(rm.last_updated_timestamp or 0) / 1000.0,
                )
            )
        return sorted(out, key=lambda m: m.name)

    def find_versions(self, tag: str, value: str) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"tags.`{tag}` = '{value}'")
        infos = [self._info(mv, with_run=False) for mv in found]
        return sorted(infos, key=lambda v: (v.name, int(v.version)))

    def resolve(self, model_uri: str) -> VersionInfo:
        """The version a ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` URI names."""
        if not model_uri.startswith("models:/"):
            raise ValueError(f"{model_uri!r} is not a registry URI (models:/NAME/VERSION)")
        rest = model_uri[len("models:/") :].strip("/")
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = self.client.get_model_version_by_alias(name, alias)
            return self.get_version(name, str(mv.version))
        name, _, version = rest.rpartition("/")
        if not name or not version:
            raise ValueError(f"{model_uri!r} names no version (models:/NAME/VERSION)")
        return self.get_version(name, version)

    def download_uri(self, name: str, version: str) -> str:
        return str(self.client.get_model_version_download_uri(name, str(version)))

    def alias_version(self, name: str, alias: str) -> str | None:
        _check_name(name)
        if not self.client.search_registered_models(f"name = '{name}'", max_results=1):
            return None
        version = (self.client.get_registered_model(name).aliases or {}).get(alias)
        return None if version is None else str(version)

    def download(self, name: str, version: str, dst: Path) -> Path:
        # A progress bar per download is noise in a step's log.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        _import_mlflow()
        from mlflow.artifacts import download_artifacts

        dst.mkdir(parents=True, exist_ok=True)
        local = download_artifacts(
            artifact_uri=self.download_uri(name, version),
            dst_path=str(dst),
            tracking_uri=self.uri,
        )
        return Path(local)

    def _info(self, mv: Any, *, with_run: bool, aliases: list[str] | None = None) -> VersionInfo:
        names = aliases if aliases is not None else getattr(mv, "aliases", None) or ()
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        if with_run and mv.run_id:
            try:
                data = self.client.get_run(mv.run_id).data
                metrics, params = dict(data.metrics), dict(data.params)
            except Exception:
                pass  # the run was deleted; the version still stands
        return VersionInfo(
            name=mv.name,
            version=str(mv.version),
            aliases=tuple(sorted(names)),
            tags=dict(mv.tags or {}),
            run_id=mv.run_id,
            source=str(mv.source or ""),
            created_at=(mv.creation_timestamp or 0) / 1000.0,
            metrics=metrics,
            params=params,
        )


@contextmanager
def _first_use_lock(uri: str) -> Iterator[None]:
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri[len("sqlite:///") :] + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _check_name(name: str) -> None:
    if "'" in name or "`" in name:
        raise ValueError(f"invalid model name {name!r}")


def _log_transformers_dir(mlflow: Any, path: Path) -> None:
    """Log a ``save_pretrained`` directory as it is, under ``model/model`` beside an ``MLmodel``.

    Not ``mlflow.transformers.log_model``: from a local directory it needs a task
    and asks the Hugging Face Hub for a model card (``_fetch_model_card`` in
    mlflow/transformers/__init__.py, a network call), and from a pipeline or a
    dict of components it needs the model loaded in memory -- a second copy of
    weights the server loads anyway. The files are copied as they are; the
    ``MLmodel`` names the transformers flavor in MLflow's own layout.
    """
    import tempfile
    from importlib import metadata

    from workbench_dsl.backends.registry import _transformers

    info = _transformers.describe(path)
    try:
        version: str | None = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        version = None
    mlflow.log_artifacts(str(path), f"model/{_transformers.MODEL_SUBDIR}")
    with tempfile.TemporaryDirectory() as tmp:
        meta = Path(tmp) / "MLmodel"
        meta.write_text(_transformers.mlmodel(info, transformers_version=version), encoding="utf-8")
        mlflow.log_artifact(str(meta), "model")


def _log_object(mlflow: Any, model: Any, flavor: str, pip_requirements: list[str] | None) -> str:
    """Log an in-memory model with its flavor; requirements are given, never inferred (slow)."""
    if flavor not in FLAVORS:
        raise ValueError(f"unknown flavor {flavor!r} (known: {', '.join(FLAVORS)})")
    import logging

    # The pickle-format warning is for untrusted files; these are the step's own.
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    if flavor == "sklearn":
        import mlflow.sklearn

        # pickle, not MLflow 3's default skops: skops imports every estimator (3 s) and
        # KServe's sklearn server reads model.pkl.
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="pickle",
            pip_requirements=pip_requirements or _requirements("scikit-learn"),
        )
    elif flavor == "pytorch":
        import mlflow.pytorch

        info = mlflow.pytorch.log_model(
            model, name="model", pip_requirements=pip_requirements or _requirements("torch")
        )
    else:
        import cloudpickle
        import mlflow.pyfunc

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow asks for type hints on predict
            from workbench_dsl.backends.registry import _pyfunc

        # By value, so the logged model loads where workbench-dsl is not installed.
        cloudpickle.register_pickle_by_value(_pyfunc)
        try:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=_pyfunc.PickledPredictor(model),
                pip_requirements=pip_requirements or _requirements("cloudpickle"),
            )
        finally:
            cloudpickle.unregister_pickle_by_value(_pyfunc)
    return str(info.model_uri)


def _requirements(*dists: str) -> list[str]:
    from importlib import metadata

    out = []
    for dist in dists:
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(dist)
    return out
