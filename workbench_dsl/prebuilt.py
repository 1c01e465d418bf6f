"""The prebuilt KFP components: the launchers compiled to component YAML, shipped with the package.

People who write plain KFP load them with ``kfp.components.load_component_from_file``
(https://www.kubeflow.org/docs/components/pipelines/user-guides/components/load-and-share-components/);
``workbench components`` says where they are and what they take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench_dsl._shipped import shipped_dir
from workbench_dsl.errors import UsageError


@dataclass(frozen=True)
class Port:
    """One input or output of a component."""

    name: str
    type: str
    default: Any = None
    optional: bool = False


@dataclass(frozen=True)
class PrebuiltComponent:
    """One component YAML."""

    name: str  # the file's stem: what `workbench components path NAME` takes
    kfp_name: str  # the component's own name, as KFP loads it
    path: Path
    description: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]


def components_dir() -> Path | None:
    """The folder of the prebuilt component YAML files (None when this install has none)."""
    return shipped_dir("components")


def _ports(definitions: dict[str, Any]) -> tuple[Port, ...]:
    ports = []
    for name, d in sorted((definitions.get("parameters") or {}).items()):
        kind = str(d.get("parameterType", "")).lower().replace("number_", "")
        default = d.get("defaultValue")
        if kind == "integer" and isinstance(default, float):
            default = int(default)  # KFP writes integer defaults as floats
        ports.append(Port(name, kind, default, bool(d.get("isOptional"))))
    for name, d in sorted((definitions.get("artifacts") or {}).items()):
        kind = str((d.get("artifactType") or {}).get("schemaTitle", "artifact"))
        ports.append(Port(name, kind, None, bool(d.get("isOptional"))))
    return tuple(ports)


def _description(text: str, spec: dict[str, Any]) -> str:
    # KFP writes the description into the header comment only ("# Description: ...").
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# Description:"):
            return line.split(":", 1)[1].strip()
    return str((spec.get("pipelineInfo") or {}).get("description", ""))


def read_component(path: Path) -> PrebuiltComponent:
    """Name, description, inputs and outputs of one component YAML."""
    import yaml

    text = path.read_text(encoding="utf-8")
    spec = yaml.safe_load(text) or {}
    root = spec.get("root") or {}
    return PrebuiltComponent(
        name=path.stem,
        kfp_name=str((spec.get("pipelineInfo") or {}).get("name", path.stem)),
        path=path,
        description=_description(text, spec),
        inputs=_ports(root.get("inputDefinitions") or {}),
        outputs=_ports(root.get("outputDefinitions") or {}),
    )


def list_components() -> list[Path]:
    """The component YAML files, by name."""
    folder = components_dir()
    return sorted(folder.glob("*.yaml")) if folder else []


def get_component(name: str) -> PrebuiltComponent:
    """The component called ``name`` (``train`` or ``train.yaml``)."""
    paths = {p.stem: p for p in list_components()}
    key = name.removesuffix(".yaml")
    if key not in paths:
        known = ", ".join(paths) or "none"
        raise UsageError(
            f"unknown component {name!r} (known: {known}); `workbench components list` shows them"
        )
    return read_component(paths[key])
