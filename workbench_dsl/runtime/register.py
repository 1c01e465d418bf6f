"""The body of a ``@register`` step: evaluate, gate, register, wait for approval, promote.

Runs inside the task (the engine's worker locally, a pod on a cluster). The
registry is MLflow: locally the SQLite one under the local root unless
``workbench.toml`` names a tracking URI; on a cluster the tracking server URL
baked into the step (``[registry] cluster_tracking_uri``) or ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from workbench_dsl import _env
from workbench_dsl.errors import JobFailed
from workbench_dsl.runtime._lineage import reporting

if TYPE_CHECKING:
    from workbench_dsl.runtime._champion import Verdict


class RegisterOutputs(NamedTuple):
    promoted: bool
    version: str
    model_uri: str


@dataclass(frozen=True)
class RegisterSettings:
    """What a ``@register`` step was configured with: written by the decorator, read strictly.

    ``to_json`` is what the compiled component carries (the keys earlier
    components carried, so compiled YAML does not change); ``from_config``
    refuses an unknown key or a value of the wrong type in one line.
    """

    model: str
    gate: dict[str, str] = field(default_factory=dict)
    alias: str | None = None
    approval: str = "none"
    promote_to: str | None = None
    approval_timeout: float = 86400.0
    flavor: str = "auto"
    model_param: str = "model"
    step: str = "register"
    tracking_uri: str | None = None
    cluster_tracking_uri: str | None = None
    #: ``{"metric": "OP NUMBER"}`` on challenger - champion; empty: no comparison.
    beats_champion: dict[str, str] = field(default_factory=dict)
    #: The champion's alias (set only with ``beats_champion``).
    champion_alias: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON a launcher component carries (the champion keys only when they are set)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.beats_champion:
            del out["beats_champion"], out["champion_alias"]
        return out

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RegisterSettings:
        """Read what :meth:`to_json` wrote; an unknown key or a mistyped value is an error."""
        from workbench_dsl.runtime.settings import SettingsError

        def bad(key: str, expected: str) -> SettingsError:
            return SettingsError(
                f"register settings: {key} must be {expected} (got {cfg.get(key)!r}); rebuild "
                f"the component with the workbench-dsl version that runs it"
            )

        unknown = sorted(set(cfg) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingsError(
                f"register settings: unknown field(s) {', '.join(unknown)}; rebuild the "
                f"component with the workbench-dsl version that runs it"
            )
        for key in ("model", "approval", "flavor", "model_param", "step"):
            if key in cfg and (not isinstance(cfg[key], str) or not cfg[key]):
                raise bad(key, "a non-empty string")
        if "model" not in cfg:
            raise bad("model", "a non-empty string")
        for key in (
            "alias",
            "promote_to",
            "tracking_uri",
            "cluster_tracking_uri",
            "champion_alias",
        ):
            if cfg.get(key) is not None and not isinstance(cfg[key], str):
                raise bad(key, "a string or null")
        gate = cfg.get("gate") or {}
        if not isinstance(gate, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in gate.items()
        ):
            raise bad("gate", "an object of strings")
        beats = cfg.get("beats_champion") or {}
        if not isinstance(beats, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in beats.items()
        ):
            raise bad("beats_champion", "an object of strings")
        timeout = cfg.get("approval_timeout", 86400.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise bad("approval_timeout", "a number of seconds > 0")
        return cls(
            **{
                **cfg,
                "gate": dict(gate),
                "beats_champion": dict(beats),
                "approval_timeout": float(timeout),
            }
        )


@reporting("register")
def launch(source: str, fn_name: str, config_json: str, args: dict[str, Any]) -> RegisterOutputs:
    """Run the user's evaluation function and register the model it evaluated."""
    from workbench_dsl.runtime._user import load_function

    settings = RegisterSettings.from_config(json.loads(config_json))
    fn = load_function(source, fn_name)
    args = own_arguments(fn, args)
    metrics = fn(**args)
    verdict = None
    if settings.beats_champion:
        from workbench_dsl.backends.registry import open_registry
        from workbench_dsl.runtime._champion import judge

        verdict = judge(
            fn,
            args,
            model_param=settings.model_param,
            model=settings.model,
            alias=settings.champion_alias or settings.promote_to or "production",
            margins=settings.beats_champion,
            challenger=_metrics(metrics, settings.step),
            registry=open_registry(tracking_uri(settings)),
            metrics_of=lambda result: _metrics(result, f"{settings.step} (champion)"),
        )
    return register_evaluated(
        args[settings.model_param], metrics, settings, inputs=args, verdict=verdict
    )


def own_arguments(fn: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    """The wrapper's ``locals()`` cut down to ``fn``'s parameters (it also holds ``launch``)."""
    import inspect

    names = inspect.signature(fn).parameters
    return {k: v for k, v in args.items() if k in names}


def register_prebuilt(
    model: Any,
    metrics: Mapping[str, Any],
    *,
    model_name: str,
    gate: Mapping[str, str],
    alias: str = "",
    approval: str = "none",
    promote_to: str = "",
    approval_timeout_s: float = 86400.0,
    flavor: str = "auto",
    tracking_uri: str = "",
) -> RegisterOutputs:
    """The prebuilt ``register_model`` component (components/register.yaml) for plain KFP."""
    from workbench_dsl.runtime._gate import GateSyntaxError, parse_gate

    if approval not in ("none", "manual"):
        raise JobFailed(f"approval must be 'none' or 'manual' (got {approval!r})")
    if flavor not in ("auto", "sklearn", "pytorch", "pyfunc", "transformers"):
        raise JobFailed(
            f"flavor must be auto, sklearn, pytorch, pyfunc or transformers (got {flavor!r})"
        )
    if approval_timeout_s <= 0:
        raise JobFailed(f"approval_timeout_s must be positive (got {approval_timeout_s})")
    try:
        parse_gate(gate)
    except GateSyntaxError as e:
        raise JobFailed(str(e)) from None
    settings = RegisterSettings(
        model=model_name,
        gate=dict(gate),
        alias=alias or None,
        approval=approval,
        promote_to=promote_to or None,
        approval_timeout=float(approval_timeout_s),
        flavor=flavor,
        step="register-model",
        tracking_uri=tracking_uri or None,
        cluster_tracking_uri=tracking_uri or None,
    )
    return register_evaluated(model, metrics, settings, inputs={"model": model})


def tracking_uri(settings: RegisterSettings) -> str | None:
    """The registry this step talks to (None: the local SQLite registry)."""
    from workbench_dsl.runtime._placement import on_cluster

    if not on_cluster():
        return settings.tracking_uri or None
    uri = settings.cluster_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise JobFailed(
            "no MLflow tracking server for the cluster: set [registry] cluster_tracking_uri "
            "in workbench.toml (or MLFLOW_TRACKING_URI in the step's env)"
        )
    return uri


def register_evaluated(
    model: Any,
    metrics: Any,
    settings: RegisterSettings,
    *,
    inputs: Mapping[str, Any] | None = None,
    verdict: Verdict | None = None,
) -> RegisterOutputs:
    """Gate the metrics; when they pass, register ``model`` and handle approval and aliases.

    Args:
        model: The ``Input[Model]`` artifact (or a path to the model file or directory).
        metrics: What the evaluation returned: a dict of metric name to number.
        settings: The step's configuration.
        inputs: All inputs of the step (parameters are logged, artifacts digested).
        verdict: The comparison with the champion (``beats_champion``), when there is one.
    """
    from workbench_dsl.backends import approvals
    from workbench_dsl.backends.registry import open_registry
    from workbench_dsl.runtime._gate import MissingMetric, check_gate, parse_gate

    values = _metrics(metrics, settings.step)
    try:
        checks = check_gate(parse_gate(settings.gate), values)
    except MissingMetric as e:
        raise JobFailed(f"{settings.step}: {e}") from None
    passed = all(c.passed for c in checks)
    for c in checks:
        print(f"gate: {c}", flush=True)
    if verdict is not None:
        for m in verdict.checks:
            print(f"gate: {m}", flush=True)
        print(f"gate: {verdict.summary}", flush=True)
        passed = passed and verdict.passed

    registry = open_registry(tracking_uri(settings))
    run_tags = _run_tags(settings, inputs or {})
    run_tags["workbench.gate"] = "passed" if passed else "failed"
    if verdict is not None:
        run_tags.update(verdict.tags())
    run_id = registry.log_evaluation(
        experiment=os.environ.get(_env.PIPELINE) or f"workbench-{settings.model}",
        run_name=_step_name(settings),
        tags=run_tags,
        params=_params(inputs or {}),
        metrics=values,
    )
    if not passed:
        failed = "; ".join(str(c.condition) + f" (got {c.value:g})" for c in checks if not c.passed)
        if verdict is not None and not verdict.passed:
            failed = "; ".join(x for x in (failed, verdict.summary) if x)
        _env.set_status(f"gate failed: {failed}; nothing registered")
        print(f"gate failed: {failed}; {settings.model} not registered", flush=True)
        return RegisterOutputs(False, "", "")

    from workbench_dsl.runtime._approval_wait import (
        earlier_version,
        wait_on_engine,
        wait_on_registry,
    )

    reused = earlier_version(registry, settings) if settings.approval == "manual" else None
    if reused is not None:
        version, uri = reused.version, reused.uri
        print(f"reusing {uri}: this run registered it before it stopped", flush=True)
    else:
        path = getattr(model, "path", model)
        hint = (getattr(model, "metadata", None) or {}).get("framework")
        from workbench_dsl.runtime._flavor import load_model_artifact

        obj, flavor = load_model_artifact(path, settings.flavor, hint)
        version_tags = {k: v for k, v in run_tags.items() if not k.startswith("workbench.input.")}
        version_tags["workbench.flavor"] = flavor
        from workbench_dsl.runtime._training_data import version_tags as training_data

        version_tags.update(training_data(model, inputs or {}))
        if flavor == "transformers":
            from workbench_dsl.backends.registry._transformers import describe

            version_tags.update(describe(obj).tags())
        info = registry.register(
            name=settings.model, model=obj, flavor=flavor, run_id=run_id, tags=version_tags
        )
        version, uri = info.version, info.uri
        print(f"registered {uri} ({flavor})", flush=True)
    if settings.alias:
        registry.set_alias(settings.model, settings.alias, version)
        print(f"alias {settings.alias} -> version {version}", flush=True)

    if settings.approval != "manual":
        if settings.promote_to:
            registry.set_alias(settings.model, settings.promote_to, version)
        if verdict is not None:
            _env.set_status(f"{settings.model} version {version} registered; {verdict.summary}")
        return RegisterOutputs(True, version, uri)

    if _env.running_locally():
        decided = wait_on_engine(registry, settings, version)
    else:
        decided = wait_on_registry(registry, settings, version)
    if decided.state == approvals.EXPIRED:
        raise JobFailed(
            f"no decision on {settings.model} version {version} within "
            f"{_duration(settings.approval_timeout)}; the approval expired"
        )
    who = f"by {decided.who}" + (f": {decided.comment}" if decided.comment else "")
    if decided.state == approvals.REJECTED:
        _env.set_status(f"{settings.model} version {version} rejected {who}")
        print(f"rejected {who}", flush=True)
        return RegisterOutputs(False, version, uri)
    if settings.promote_to:
        print(f"alias {settings.promote_to} -> version {version}", flush=True)
    beat = f"; {verdict.summary}" if verdict is not None else ""
    _env.set_status(f"{settings.model} version {version} approved {who}{beat}")
    print(f"approved {who}", flush=True)
    return RegisterOutputs(True, version, uri)


def _metrics(result: Any, step: str) -> dict[str, float]:
    if not isinstance(result, Mapping):
        raise JobFailed(
            f"{step} must return a dict of metrics such as {{'accuracy': 0.93}} "
            f"(it returned {type(result).__name__})"
        )
    out = {}
    for key, value in result.items():
        if isinstance(value, bool) or (
            not isinstance(value, int | float) and not _is_number(value)
        ):
            raise JobFailed(f"{step} returned metric {key!r} = {value!r}; metrics must be numbers")
        out[str(key)] = float(value)
    return out


def _is_number(value: Any) -> bool:
    # NumPy scalars and the like.
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return hasattr(value, "dtype")


def _step_name(settings: RegisterSettings) -> str:
    return os.environ.get(_env.TASK) or settings.step


def _run_tags(settings: RegisterSettings, inputs: Mapping[str, Any]) -> dict[str, str]:
    tags = {
        "workbench.pipeline": os.environ.get(_env.PIPELINE, ""),
        "workbench.run_id": os.environ.get(_env.RUN_ID, ""),
        "workbench.step": _step_name(settings),
        "workbench.model": settings.model,
    }
    for name, value in sorted(inputs.items()):
        path = getattr(value, "path", None)
        if path and hasattr(value, "uri"):
            tags[f"workbench.input.{name}.digest"] = digest(path)
            tags[f"workbench.input.{name}.uri"] = str(value.uri)
    return tags


def _params(inputs: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in sorted(inputs.items()):
        if hasattr(value, "uri"):
            continue
        out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def digest(path: str | Path) -> str:
    """``sha256:...`` of a file, or of a directory's relative paths and contents."""
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    if not p.exists():
        return "missing"
    for f in files:
        if f is not p:
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
