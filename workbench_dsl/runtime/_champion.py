"""Champion vs challenger: the version in production evaluated by the same function, on the same data.

``@register(beats_champion={"accuracy": 0.01})`` calls the step's evaluation function
twice with the same arguments: once with the model being registered (the challenger)
and once with the version the registered model's ``champion_alias`` points to (the
champion, default ``promote_to`` or ``production``), handed over as a ``Model``
artifact in the challenger's own file format. MLflow's ``mlflow.evaluate`` did the
same with ``baseline_model`` and ``MetricThreshold(min_absolute_change=...)``; here the
step's own code is the evaluator, so it runs unchanged locally and in a pod (which
reads the champion's files from the tracking server's artifact store).
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_dsl.backends.registry import (
    FAILED,
    NO_CHAMPION,
    PASSED,
    TAG_ALIAS,
    TAG_CHALLENGER_METRICS,
    TAG_CHAMPION_METRICS,
    TAG_MARGINS,
    TAG_SUMMARY,
    TAG_VERDICT,
    TAG_VERSION,
)
from workbench_dsl.errors import JobFailed
from workbench_dsl.runtime._gate import MarginCheck, MissingMetric, check_margins, parse_margins

if TYPE_CHECKING:
    from workbench_dsl.backends.registry import Registry

#: ``metadata`` keys of the champion artifact the evaluation function receives.
ROLE_KEY, MODEL_URI_KEY = "workbench.role", "model_uri"


@dataclass(frozen=True)
class Verdict:
    """How the challenger fared against the champion (``version`` None: there was none)."""

    model: str
    alias: str
    version: str | None
    margins: dict[str, str]
    challenger: dict[str, float]
    champion: dict[str, float] = field(default_factory=dict)
    checks: tuple[MarginCheck, ...] = ()

    @property
    def state(self) -> str:
        if self.version is None:
            return NO_CHAMPION
        return PASSED if all(c.passed for c in self.checks) else FAILED

    @property
    def passed(self) -> bool:
        return self.state != FAILED

    @property
    def summary(self) -> str:
        """One line for the step's status, the log and ``models show``."""
        if self.version is None:
            return (
                f"no champion ({self.model}@{self.alias} is not set): the absolute gate "
                f"alone decided"
            )
        deltas = ", ".join(f"{c.margin.metric} {c.delta:+.4g}" for c in self.checks)
        if self.state == PASSED:
            return f"beats champion version {self.version} (@{self.alias}): {deltas}"
        short = "; ".join(
            f"{c.margin.metric} {c.delta:+.4g} (needs {c.margin.op} {c.margin.margin:+g})"
            for c in self.checks
            if not c.passed
        )
        return f"does not beat champion version {self.version} (@{self.alias}): {short}"

    def tags(self) -> dict[str, str]:
        return {
            TAG_ALIAS: self.alias,
            TAG_VERSION: self.version or "",
            TAG_VERDICT: self.state,
            TAG_MARGINS: _json(self.margins),
            TAG_CHAMPION_METRICS: _json(self.champion) if self.version else "",
            TAG_CHALLENGER_METRICS: _json(self.challenger),
            TAG_SUMMARY: self.summary[:500],
        }


def _json(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(sorted(values.items())), separators=(",", ":"))


def judge(
    fn: Callable[..., Any],
    args: Mapping[str, Any],
    *,
    model_param: str,
    model: str,
    alias: str,
    margins: Mapping[str, str],
    challenger: Mapping[str, float],
    registry: Registry,
    metrics_of: Callable[[Any], dict[str, float]],
) -> Verdict:
    """Evaluate the champion with ``fn`` on the challenger's other arguments and compare.

    Args:
        fn: The step's evaluation function.
        args: The arguments the challenger was evaluated with.
        model_param: The argument that holds the model.
        model: The registered model's name.
        alias: The champion's alias.
        margins: ``beats_champion`` as ``{"metric": "OP NUMBER"}``.
        challenger: The challenger's metrics.
        registry: Where the champion is.
        metrics_of: Checks what ``fn`` returned (a dict of numbers) and returns it.
    """
    parsed = parse_margins(margins)
    try:  # before the champion is fetched: the challenger's own result may lack a metric
        check_margins(parsed, challenger, {m.metric: 0.0 for m in parsed})
    except MissingMetric as e:
        raise JobFailed(str(e)) from None
    version = registry.alias_version(model, alias)
    if version is None:
        return Verdict(model, alias, None, dict(margins), dict(challenger))
    print(f"champion: {model} version {version} (@{alias}), evaluated on the same data", flush=True)
    work = Path(tempfile.mkdtemp(prefix="workbench-champion-"))
    try:
        champion_model = _materialise(registry, model, version, args[model_param], work)
        try:
            result = fn(**{**args, model_param: champion_model})
        except Exception as e:
            raise JobFailed(
                f"evaluating the champion {model} version {version} (@{alias}) failed: "
                f"{type(e).__name__}: {e}; the challenger and the champion must take the "
                f"same inputs"
            ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    champion = metrics_of(result)
    try:
        checks = check_margins(parsed, challenger, champion)
    except MissingMetric as e:
        raise JobFailed(str(e)) from None
    return Verdict(model, alias, version, dict(margins), dict(challenger), champion, tuple(checks))


def _materialise(registry: Registry, model: str, version: str, challenger: Any, work: Path) -> Any:
    """The champion as the evaluation function expects a model: like the challenger artifact.

    A challenger saved as an MLflow model directory gets the champion's directory; one
    saved as a file (pickle, joblib or ``torch.save``), or as a directory holding one such
    file, gets the champion's model object written the same way under the same name.
    """
    mlflow_dir = registry.download(model, version, work / "registry")
    path = Path(getattr(challenger, "path", challenger))
    if path.is_dir() and (path / "MLmodel").is_file():
        local = mlflow_dir
        framework = "mlflow"
    else:
        # The file the challenger's model is in, and where it sits in the artifact.
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        source = files[0] if len(files) == 1 else path
        inside = source.relative_to(path) if path.is_dir() and source != path else None
        local = work / "champion" / (path.name or "model")
        target = local / inside if inside is not None else local
        target.parent.mkdir(parents=True, exist_ok=True)
        framework = _write_like(_native(mlflow_dir), source, target)
    uri = f"models:/{model}/{version}"
    if isinstance(challenger, str | Path):
        return str(local)
    meta = {ROLE_KEY: "champion", MODEL_URI_KEY: uri, "framework": framework}
    try:
        return type(challenger)(name="champion", uri=str(local), metadata=meta)
    except TypeError:  # not a KFP artifact class: anything with .path will do
        return _Artifact(str(local), meta)


@dataclass
class _Artifact:
    path: str
    metadata: dict[str, Any]

    @property
    def uri(self) -> str:
        return self.path


def _native(mlflow_dir: Path) -> Any:
    """The model object a registered version holds (the object a pyfunc wraps, unwrapped)."""
    # The deployer's loader reads each flavor the cheapest way; reuse it rather than a copy.
    from workbench_dsl.backends.deployer._predictors import load_native

    obj = load_native(mlflow_dir, "")
    unwrap = getattr(obj, "unwrap_python_model", None)
    if callable(unwrap):
        inner = unwrap()
        obj = getattr(inner, "obj", inner)  # registry/_pyfunc.PickledPredictor keeps it in .obj
    return obj


def _write_like(obj: Any, source: Path, dst: Path) -> str:
    """Write ``obj`` in ``source``'s format (torch archive or pickle); returns the framework."""
    head = b""
    if source.is_file():
        with open(source, "rb") as src:
            head = src.read(2)
    if head == b"PK":  # torch.save writes a zip archive
        import torch

        torch.save(obj, dst)
        return "pytorch"
    try:
        with open(dst, "wb") as f:
            pickle.dump(obj, f)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        with open(dst, "wb") as f:
            cloudpickle.dump(obj, f)
    module = type(obj).__module__.split(".")[0]
    return "sklearn" if module == "sklearn" else module
