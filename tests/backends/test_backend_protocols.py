"""Each backend has one shape: its local and its Kubernetes side satisfy the same protocol.

mypy checks the conformance where the runtime and the CLI hold them by the
protocol; this checks it at run time too, argument by argument.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from workbench_dsl.backends.deployer import Deployer
from workbench_dsl.backends.deployer.kubernetes import KServeDeployer
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.backends.sweeper.base import Sweeper
from workbench_dsl.backends.sweeper.kubernetes import KatibSweeper
from workbench_dsl.backends.sweeper.local import OptunaSweeper
from workbench_dsl.backends.trainer.base import Trainer
from workbench_dsl.backends.trainer.kubernetes import KubernetesTrainer
from workbench_dsl.backends.trainer.local import LocalTrainer
from workbench_dsl.paths import LocalRoot


def _shape(fn: object) -> list[tuple[str, object, bool]]:
    """Each parameter after ``self``: (name, kind, required), the trial's name left out."""
    params = list(inspect.signature(fn).parameters.values())[1:]  # type: ignore[arg-type]
    return [
        (
            "<positional>" if p.kind <= p.POSITIONAL_OR_KEYWORD else p.name,
            p.kind,
            p.default is p.empty,
        )
        for p in params
        if p.name != "issue_token"  # LocalDeployer.deploy's extra, optional keyword
    ]


def _normalised(shape: list[tuple[str, object, bool]]) -> list[tuple[str, bool]]:
    # A protocol's positional-only parameter is met by a positional-or-keyword one.
    return [(name, required) for name, _, required in shape]


def _methods(protocol: type) -> list[str]:
    return sorted(
        n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")
    )


@pytest.mark.parametrize(
    ("protocol", "sides"),
    [
        (Trainer, [LocalTrainer, KubernetesTrainer]),
        (Sweeper, [OptunaSweeper, KatibSweeper]),
        (Deployer, [LocalDeployer, KServeDeployer]),
    ],
)
def test_local_and_kubernetes_sides_take_the_protocols_arguments(
    protocol: type, sides: list[type]
) -> None:
    assert len(_methods(protocol)) >= 1
    for side in sides:
        for method in _methods(protocol):
            assert _normalised(_shape(getattr(side, method))) == _normalised(
                _shape(getattr(protocol, method))
            ), f"{side.__name__}.{method}"


def test_the_built_backends_are_instances_of_their_protocol(tmp_path: Path) -> None:
    assert isinstance(LocalTrainer(), Trainer)
    assert isinstance(KubernetesTrainer(), Trainer)
    assert isinstance(OptunaSweeper(journal=tmp_path / "j", study_name="s"), Sweeper)
    assert isinstance(KatibSweeper(), Sweeper)
    assert isinstance(LocalDeployer(LocalRoot(tmp_path / ".workbench")), Deployer)
    assert isinstance(KServeDeployer("ml"), Deployer)
    assert not isinstance(object(), Deployer)
