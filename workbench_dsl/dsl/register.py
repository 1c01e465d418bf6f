"""``@register``: evaluate a model, gate it on its metrics, register it in MLflow, approve, promote.

The decorated function takes the model artifact (``Input[Model]``) and any data
and returns a dict of metrics. The step compiles to a launcher component
(``runtime/register.py``) with the function's inputs and three outputs:
``promoted`` (bool), ``version`` (str) and ``model_uri`` (``models:/name/N``), so
downstream steps can branch on ``promoted``. KFP has no approval step
(kubeflow/pipelines#3454); this is one.
See https://mlflow.org/docs/latest/ml/model-registry/
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar, overload

from workbench_dsl.dsl._options import StepOptions, parse_duration
from workbench_dsl.dsl._where import function_location
from workbench_dsl.dsl.step import Step
from workbench_dsl.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent

    from workbench_dsl.config import Config

P = ParamSpec("P")
R = TypeVar("R")

APPROVALS = ("none", "manual")
#: The champion's alias when neither ``champion_alias`` nor ``promote_to`` names one.
DEFAULT_CHAMPION_ALIAS = "production"
FLAVORS = ("auto", "sklearn", "pytorch", "pyfunc", "transformers")
OUTPUTS = "NamedTuple('Outputs', [('promoted', bool), ('version', str), ('model_uri', str)])"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_INPUT_MODEL = re.compile(r":\s*(?:dsl\.)?Input\[\s*(?:dsl\.)?Model\s*\]")
_DICT_RETURN = re.compile(r"^(?:typing\.)?(?:dict|Dict|Mapping)(?:\[.*\])?$")


class RegisterStep(Step[P, R]):
    """A ``@register`` step: its settings travel in the compiled component's config."""

    kind: ClassVar[str] = "register"

    def __init__(self, fn: Callable[P, R], options: StepOptions, settings: dict[str, Any]) -> None:
        super().__init__(fn, options)
        self.settings = settings

    def _build_component(self, config: Config) -> BaseComponent:
        from workbench_dsl.dsl._launcher import build_launcher, signature_source

        where = f"{function_location(self.fn)}: @register step {self.name}"
        sig = signature_source(self.fn)
        model_param = _model_param(sig.params, where)
        clash = sorted(set(sig.params) & {"promoted", "version", "model_uri"})
        if clash:
            raise PipelineDefinitionError(
                f"{where}: parameter {clash[0]!r} has the name of an output of the step "
                f"(promoted, version, model_uri); rename it"
            )
        if sig.returns is not None and not _DICT_RETURN.match(sig.returns.strip()):
            raise PipelineDefinitionError(
                f"{where}: must return a dict of metrics (annotated -> dict), not {sig.returns}"
            )
        preset = config.preset(self.options.preset)
        from workbench_dsl.runtime.register import RegisterSettings

        step_config = RegisterSettings(
            **self.settings,
            model_param=model_param,
            step=self.name,
            tracking_uri=config.get("registry", "tracking_uri"),
            cluster_tracking_uri=config.get("registry", "cluster_tracking_uri"),
        ).to_json()
        return build_launcher(
            self.fn,
            kind="register",
            params=list(sig.params.values()),
            returns=OUTPUTS,
            config=step_config,
            image=config.runtime_image,
            packages=preset.packages,
            pip_index_urls=preset.pip_index_urls,
        )


def _model_param(params: Mapping[str, str], where: str) -> str:
    candidates = [name for name, text in params.items() if _INPUT_MODEL.search(text)]
    if not candidates:
        raise PipelineDefinitionError(
            f"{where}: needs a parameter annotated Input[Model]: the model it evaluates "
            f"and registers (for example `def evaluate(model: Input[Model], data: "
            f"Input[Dataset]) -> dict`)"
        )
    if len(candidates) > 1:
        if "model" in candidates:
            return "model"
        raise PipelineDefinitionError(
            f"{where}: has several Input[Model] parameters ({', '.join(candidates)}); name "
            f"the one to register 'model'"
        )
    return candidates[0]


def validate_settings(
    step: str,
    *,
    model: str,
    gate: Mapping[str, str] | None,
    alias: str | None,
    approval: str,
    promote_to: str | None,
    approval_timeout: float | int | str,
    flavor: str,
    beats_champion: Mapping[str, float | str] | None = None,
    champion_alias: str | None = None,
) -> dict[str, Any]:
    """Check ``@register``'s own options; errors name the step and the option."""
    from workbench_dsl.runtime._gate import GateSyntaxError, normalise_margins, parse_gate

    if not isinstance(model, str) or not _MODEL_NAME.match(model):
        raise PipelineDefinitionError(
            f"{step}: model={model!r} must be a registered-model name: letters, digits, "
            f"'.', '_' and '-' (for example model='churn')"
        )
    if gate is not None and not isinstance(gate, Mapping):
        raise PipelineDefinitionError(
            f"{step}: gate must be a dict such as {{'accuracy': '>= 0.9'}} (got {type(gate).__name__})"
        )
    try:
        parse_gate(gate or {})
    except GateSyntaxError as e:
        raise PipelineDefinitionError(f"{step}: {e}") from None
    if beats_champion is not None and not isinstance(beats_champion, Mapping):
        raise PipelineDefinitionError(
            f"{step}: beats_champion must be a dict such as {{'accuracy': 0.01}} "
            f"(got {type(beats_champion).__name__})"
        )
    try:
        margins = normalise_margins(beats_champion or {})
    except GateSyntaxError as e:
        raise PipelineDefinitionError(f"{step}: {e}") from None
    if champion_alias is not None and not margins:
        raise PipelineDefinitionError(
            f"{step}: champion_alias is set but beats_champion is not; say what the challenger "
            f"must beat the champion by, e.g. beats_champion={{'accuracy': 0.01}}"
        )
    for option, value in (
        ("alias", alias),
        ("promote_to", promote_to),
        ("champion_alias", champion_alias),
    ):
        if value is None:
            continue
        if (
            not isinstance(value, str)
            or not _ALIAS.match(value)
            or value == "latest"
            or re.fullmatch(r"[vV]\d+", value)
        ):
            raise PipelineDefinitionError(
                f"{step}: {option}={value!r} is not a valid alias: letters, digits, '_' and "
                f"'-', not 'latest' or v<number> (for example 'staging')"
            )
    if alias is not None and alias == promote_to:
        raise PipelineDefinitionError(
            f"{step}: alias and promote_to are both {alias!r}; alias is set when the gate "
            f"passes, promote_to after approval"
        )
    if approval not in APPROVALS:
        raise PipelineDefinitionError(
            f"{step}: approval={approval!r} must be one of {', '.join(map(repr, APPROVALS))}"
        )
    if flavor not in FLAVORS:
        raise PipelineDefinitionError(
            f"{step}: flavor={flavor!r} must be one of {', '.join(map(repr, FLAVORS))}"
        )
    timeout = parse_duration(approval_timeout, f"{step}: approval_timeout")
    champion = {}
    if margins:
        champion = {
            "beats_champion": margins,
            "champion_alias": champion_alias or promote_to or DEFAULT_CHAMPION_ALIAS,
        }
    return {
        **champion,
        "model": model,
        "gate": dict(gate or {}),
        "alias": alias,
        "approval": approval,
        "promote_to": promote_to,
        "approval_timeout": timeout,
        "flavor": flavor,
    }


@overload
def register(
    fn: Callable[P, R],
    /,
) -> RegisterStep[P, R]: ...


@overload
def register(
    fn: None = None,
    /,
    *,
    model: str,
    gate: Mapping[str, str] | None = None,
    alias: str | None = None,
    approval: str = "none",
    promote_to: str | None = None,
    approval_timeout: float | str = "24h",
    flavor: str = "auto",
    beats_champion: Mapping[str, float | str] | None = None,
    champion_alias: str | None = None,
    preset: str | None = None,
    profile: str | None = None,
    cache: bool | None = None,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> Callable[[Callable[P, R]], RegisterStep[P, R]]: ...


def register(
    fn: Callable[P, R] | None = None,
    /,
    *,
    model: str | None = None,
    gate: Mapping[str, str] | None = None,
    alias: str | None = None,
    approval: str = "none",
    promote_to: str | None = None,
    approval_timeout: float | str = "24h",
    flavor: str = "auto",
    beats_champion: Mapping[str, float | str] | None = None,
    champion_alias: str | None = None,
    preset: str | None = None,
    profile: str | None = None,
    cache: bool | None = None,
    retries: int = 0,
    retry_backoff: float | str | None = None,
    timeout: float | str | None = None,
    env: dict[str, Any] | None = None,
) -> RegisterStep[P, R] | Callable[[Callable[P, R]], RegisterStep[P, R]]:
    """Make an evaluation function a step that gates, registers and promotes the model.

    The function takes the model (``Input[Model]``) and any data and returns a
    dict of metrics. Outputs: ``promoted`` (bool), ``version`` (str) and
    ``model_uri`` (``models:/NAME/VERSION``); a failed gate or a rejection is not
    an error: ``promoted`` is False.

    Args:
        model: The registered model's name.
        gate: Metric thresholds that must all hold, e.g. ``{"accuracy": ">= 0.9"}``;
            a metric the gate names but the result lacks fails the step.
        alias: Alias set on the new version when the gate passes (e.g. ``"staging"``).
        approval: ``"none"``, or ``"manual"`` to wait for ``workbench approve`` / ``reject``.
        promote_to: Alias set on approval (at once when ``approval="none"``).
        approval_timeout: How long to wait for a decision before failing (``"24h"``).
        flavor: ``"auto"`` (detected), ``"sklearn"``, ``"pytorch"``, ``"pyfunc"`` or
            ``"transformers"`` (a Hugging Face Transformers directory; detected too).
        beats_champion: Margins by which the model must beat the champion, per metric:
            a number is the least gain of a higher-is-better metric (``{"accuracy":
            0.01}``); ``"OP NUMBER"`` compares challenger minus champion (``{"latency_ms":
            "<= -5"}``: at least 5 lower). The function is called a second time with the
            champion in place of the model, on the same other inputs. No champion yet:
            the ``gate`` alone decides.
        champion_alias: The alias whose version is the champion (default ``promote_to``,
            else ``"production"``).
        preset: Packages installed on top of the runtime image (by name).
        profile: Compute for the step, by name.
        cache: Reuse the result when the model and inputs are the same (default on;
            off with ``beats_champion``: the champion can change between runs).
        retries: Retries of a failed attempt.
        retry_backoff: Wait before the first retry, doubling after.
        timeout: Fail an attempt that runs longer (includes the wait for approval).
        env: Environment variables for the step.
    """

    def wrap(f: Callable[P, R]) -> RegisterStep[P, R]:
        step = getattr(f, "__name__", "step")
        if model is None:
            raise PipelineDefinitionError(
                f"{step}: @register() missing required argument 'model' (the registered "
                f"model's name, e.g. @register(model='churn'))"
            )
        settings = validate_settings(
            step,
            model=model,
            gate=gate,
            alias=alias,
            approval=approval,
            promote_to=promote_to,
            approval_timeout=approval_timeout,
            flavor=flavor,
            beats_champion=beats_champion,
            champion_alias=champion_alias,
        )
        options = StepOptions.build(
            step,
            preset=preset,
            profile=profile,
            # A verdict against the champion holds only while the champion does.
            cache=(not settings.get("beats_champion")) if cache is None else cache,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            env=env,
        )
        if (
            approval == "manual"
            and options.timeout is not None
            and options.timeout < settings["approval_timeout"]
        ):
            raise PipelineDefinitionError(
                f"{step}: timeout={timeout!r} is shorter than approval_timeout="
                f"{approval_timeout!r}: the step would be stopped while it waits for approval"
            )
        return RegisterStep(f, options, settings)

    if fn is not None:
        return wrap(fn)
    return wrap
