"""Both trainers have the one shape of ``base.Trainer`` (mypy checks it where the runtime uses them)."""

from __future__ import annotations

import inspect

import pytest

from workbench_dsl.backends.trainer.base import Trainer
from workbench_dsl.backends.trainer.kubernetes import KubernetesTrainer
from workbench_dsl.backends.trainer.local import LocalTrainer


def _shape(fn: object) -> list[tuple[str, object, bool]]:
    params = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in params]


@pytest.mark.parametrize("trainer", [LocalTrainer(), KubernetesTrainer()])
def test_local_and_kubernetes_trainers_take_the_same_arguments(trainer: object) -> None:
    assert isinstance(trainer, Trainer)
    assert _shape(type(trainer).run) == _shape(Trainer.run)
