"""Prebuilt ``register_model``: gate a model on metrics, register it in MLflow, approve, promote.

For plain-KFP pipelines whose own step evaluates the model and logs a
``Metrics`` artifact (``metrics.log_metric("accuracy", 0.93)``). Inputs: the
``model`` (a pickled/torch/MLflow-format Model artifact) and its ``metrics``;
``model_name``; ``gate`` (``{"accuracy": ">= 0.9"}``); ``alias``; ``approval``
(``none`` or ``manual``: wait for ``workbench approve MODEL VERSION``);
``promote_to``; ``approval_timeout_s``; ``flavor``; ``tracking_uri`` (the MLflow
server). Outputs: ``promoted``, ``version``, ``model_uri``.

    from kfp import components
    register_model = components.load_component_from_file("components/register.yaml")
"""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Input, Metrics, Model

from workbench_dsl.config import DEFAULT_RUNTIME_IMAGE


@dsl.component(base_image=DEFAULT_RUNTIME_IMAGE)
def register_model(
    model: Input[Model],
    metrics: Input[Metrics],
    model_name: str,
    gate: Optional[dict] = None,  # noqa: UP045 - KFP reads Optional[...], not X | None
    alias: str = "",
    approval: str = "none",
    promote_to: str = "",
    approval_timeout_s: float = 86400.0,
    flavor: str = "auto",
    tracking_uri: str = "",
) -> NamedTuple("Outputs", [("promoted", bool), ("version", str), ("model_uri", str)]):
    """Gate a model on its metrics, register it in MLflow, wait for approval, set aliases."""
    from workbench_dsl.runtime.register import register_prebuilt

    return register_prebuilt(
        model,
        dict(metrics.metadata),
        model_name=model_name,
        gate=gate or {},
        alias=alias,
        approval=approval,
        promote_to=promote_to,
        approval_timeout_s=approval_timeout_s,
        flavor=flavor,
        tracking_uri=tracking_uri,
    )


COMPONENT = register_model
