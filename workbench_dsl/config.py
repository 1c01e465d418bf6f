"""Project configuration: compute profiles, presets and service settings in ``workbench.toml``.

The file is found by walking up from the pipeline module (or the current
directory). Everything has a built-in default, so a project without the file
works. A profile is what a step runs on (CPU, memory, accelerator, node
selector, tolerations, cost per hour); a preset is what it runs with (base
image and packages). Both are shared by every step kind.

Errors name the key and its line: ``workbench.toml:7: profiles.gpu-1.cpu must
be a string or a number (got list)``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench_dsl.compute import Profile, Toleration
from workbench_dsl.errors import ConfigError
from workbench_dsl.paths import find_config

__all__ = ["Config", "Preset", "Profile", "Toleration", "load_config"]


@dataclass(frozen=True)
class Preset:
    """What a step runs with: its base image and the packages installed on top."""

    name: str
    image: str
    packages: tuple[str, ...] = ()
    pip_index_urls: tuple[str, ...] = ()
    description: str = ""


BUILTIN_PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("cpu-small", cpu="1", memory="2Gi", cost_per_hour=0.05, description="1 CPU, 2 GiB"),
        Profile(
            "cpu-large", cpu="4", memory="16Gi", cost_per_hour=0.20, description="4 CPU, 16 GiB"
        ),
        Profile(
            "gpu-1",
            cpu="4",
            memory="24Gi",
            accelerator="nvidia.com/gpu",
            accelerator_count=1,
            tolerations=(Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule"),),
            cost_per_hour=1.10,
            description="4 CPU, 24 GiB, one NVIDIA GPU",
        ),
    )
}

BUILTIN_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("python", image="python:3.11-slim", description="plain Python 3.11"),
        Preset(
            "sklearn",
            image="python:3.11-slim",
            packages=("scikit-learn>=1.5", "pandas>=2.2"),
            description="scikit-learn and pandas",
        ),
        Preset(
            "torch",
            image="pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
            packages=("pandas>=2.2",),
            description="PyTorch with CUDA",
        ),
    )
}

#: The image launcher components (@train, @sweep, @register, @serve) run in on a
#: cluster: workbench-dsl with its dependencies (docker/runtime.Dockerfile builds it).
DEFAULT_RUNTIME_IMAGE = "ghcr.io/workbench-dsl/runtime:0.1.0"

# Section -> key -> accepted Python types (as parsed by tomllib).
_SECTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "defaults": {"profile": (str,), "preset": (str,)},
    "registry": {"tracking_uri": (str,), "cluster_tracking_uri": (str,)},
    "lineage": {"namespace": (str,), "url": (str,), "transport": (str,)},
    "cluster": {
        "host": (str,),
        "namespace": (str,),
        "runtime_image": (str,),
        "service_account": (str,),
        "artifact_store": (str,),
        "artifact_secret": (str,),
        "kserve_deployment_mode": (str,),
        "request_log_uri": (str,),
        "request_log_service_account": (str,),
    },
    "engine": {"max_parallel": (int,)},
}
_PROFILE_KEYS: dict[str, tuple[type, ...]] = {
    "cpu": (str, int, float),
    "memory": (str,),
    "cpu_limit": (str, int, float),
    "memory_limit": (str,),
    "accelerator": (str,),
    "accelerator_count": (int,),
    "node_selector": (dict,),
    "tolerations": (list,),
    "cost_per_hour": (int, float),
    "description": (str,),
}
_PRESET_KEYS: dict[str, tuple[type, ...]] = {
    "image": (str,),
    "packages": (list,),
    "pip_index_urls": (list,),
    "description": (str,),
}
_TOLERATION_KEYS = {"key", "operator", "value", "effect"}
# The forms KFP's PipelineTask accepts (it validates them again when lowering).
_CPU = re.compile(r"^([0-9]*[.])?[0-9]+m?$")
_MEMORY = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")


@dataclass(frozen=True)
class Config:
    """The merged configuration: built-in defaults overlaid by ``workbench.toml``."""

    path: Path | None = None
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))
    presets: dict[str, Preset] = field(default_factory=lambda: dict(BUILTIN_PRESETS))
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def default_profile(self) -> str:
        return str(self.sections.get("defaults", {}).get("profile", "cpu-small"))

    @property
    def default_preset(self) -> str:
        return str(self.sections.get("defaults", {}).get("preset", "python"))

    @property
    def runtime_image(self) -> str:
        return str(self.sections.get("cluster", {}).get("runtime_image", DEFAULT_RUNTIME_IMAGE))

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.sections.get(section, {}).get(key, default)

    def profile(self, name: str | None) -> Profile:
        """The named profile (or the default one); unknown names are a clear error."""
        name = name or self.default_profile
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ConfigError(
                f"unknown compute profile {name!r} (known: {known}); "
                f"define it under [profiles.{name}] in workbench.toml"
            ) from None

    def preset(self, name: str | None) -> Preset:
        """The named preset (or the default one); unknown names are a clear error."""
        name = name or self.default_preset
        try:
            return self.presets[name]
        except KeyError:
            known = ", ".join(sorted(self.presets))
            raise ConfigError(
                f"unknown preset {name!r} (known: {known}); "
                f"define it under [presets.{name}] in workbench.toml"
            ) from None


def load_config(start: Path | None = None) -> Config:
    """Load the ``workbench.toml`` nearest to ``start`` (a file or directory), if any."""
    path = find_config(start)
    if path is None:
        return Config()
    return parse_config(path.read_text(encoding="utf-8"), path)


def parse_config(text: str, path: Path) -> Config:
    """Parse and validate the text of a ``workbench.toml``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib says "... (at line 3, column 7)": keep its words, lead with the file.
        m = re.search(r"at line (\d+)", str(e))
        where = f"{path}:{m.group(1)}" if m else str(path)
        raise ConfigError(f"{where}: invalid TOML: {e}") from None
    locate = _Locator(text, path)
    profiles = dict(BUILTIN_PROFILES)
    presets = dict(BUILTIN_PRESETS)
    sections: dict[str, dict[str, Any]] = {}
    for top, value in data.items():
        if top == "profiles":
            _expect_table(value, locate, (top,))
            for name, body in value.items():
                profiles[name] = _profile(name, body, locate)
        elif top == "presets":
            _expect_table(value, locate, (top,))
            for name, body in value.items():
                presets[name] = _preset(name, body, locate)
        elif top in _SECTIONS:
            _expect_table(value, locate, (top,))
            sections[top] = _check_keys(value, _SECTIONS[top], locate, (top,))
        else:
            known = ", ".join(sorted([*_SECTIONS, "presets", "profiles"]))
            raise ConfigError(f"{locate(top)}: unknown section [{top}] (known: {known})")
    cfg = Config(path=path, profiles=profiles, presets=presets, sections=sections)
    for key, table in (("profile", profiles), ("preset", presets)):
        chosen = sections.get("defaults", {}).get(key)
        if chosen is not None and chosen not in table:
            known = ", ".join(sorted(table))
            raise ConfigError(
                f"{locate('defaults', key)}: defaults.{key} names unknown {key} {chosen!r} "
                f"(known: {known})"
            )
    return cfg


class _Locator:
    """Finds the line of a table or key, so errors can point at it."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def __call__(self, *keys: str) -> str:
        line = self._find(keys)
        return f"{self.path}:{line}" if line else str(self.path)

    def _find(self, keys: tuple[str, ...]) -> int | None:
        def norm(s: str) -> str:
            return s.replace('"', "").replace("'", "").replace(" ", "")

        # The key inside its table header: [a.b] then `c = ...`.
        for split in range(len(keys), 0, -1):
            header = ".".join(keys[:split])
            rest = keys[split:]
            for i, raw in enumerate(self.lines):
                if norm(raw).startswith(f"[{header}]"):
                    if not rest:
                        return i + 1
                    for j in range(i + 1, len(self.lines)):
                        s = norm(self.lines[j])
                        if s.startswith("["):
                            break
                        if s.startswith(f"{rest[0]}=") or s.startswith(f"{'.'.join(rest)}="):
                            return j + 1
        # A dotted key or inline table anywhere: profiles.x.cpu = ... / x = { cpu = ... }
        leaf = keys[-1]
        for i, raw in enumerate(self.lines):
            s = norm(raw)
            if s.startswith(f"{leaf}=") or f"{{{leaf}=" in s or f",{leaf}=" in s:
                return i + 1
        return None


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _expect_table(value: Any, locate: _Locator, keys: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{locate(*keys)}: {'.'.join(keys)} must be a table")


def _check_keys(
    body: dict[str, Any],
    schema: dict[str, tuple[type, ...]],
    locate: _Locator,
    keys: tuple[str, ...],
) -> dict[str, Any]:
    for k, v in body.items():
        if k not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(
                f"{locate(*keys, k)}: unknown key {'.'.join((*keys, k))} (known: {known})"
            )
        types = schema[k]
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        if not ok:
            raise ConfigError(
                f"{locate(*keys, k)}: {'.'.join((*keys, k))} must be {_type_names(types)} "
                f"(got {type(v).__name__})"
            )
    return dict(body)


def _quantity(value: Any, locate: _Locator, keys: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    s = str(value)
    if keys[-1].startswith("cpu"):
        if not _CPU.match(s):
            raise ConfigError(
                f"{locate(*keys)}: {'.'.join(keys)} = {s!r} is not a CPU amount "
                f"(examples: '500m', '2', 0.5)"
            )
    elif not _MEMORY.match(s):
        raise ConfigError(
            f"{locate(*keys)}: {'.'.join(keys)} = {s!r} is not a memory amount "
            f"(examples: '512Mi', '4Gi', '16G')"
        )
    return s


def _profile(name: str, body: Any, locate: _Locator) -> Profile:
    keys = ("profiles", name)
    _expect_table(body, locate, keys)
    body = _check_keys(body, _PROFILE_KEYS, locate, keys)
    node_selector = body.get("node_selector", {})
    for k, v in node_selector.items():
        if not isinstance(v, str):
            raise ConfigError(
                f"{locate(*keys, 'node_selector')}: profiles.{name}.node_selector.{k} "
                f"must be a string"
            )
    tolerations = []
    for t in body.get("tolerations", []):
        if not isinstance(t, dict) or "key" not in t or not set(t) <= _TOLERATION_KEYS:
            raise ConfigError(
                f"{locate(*keys, 'tolerations')}: profiles.{name}.tolerations entries are "
                f"tables with key and optional operator, value, effect"
            )
        tolerations.append(
            Toleration(
                key=str(t["key"]),
                operator=str(t.get("operator", "Equal")),
                value=None if t.get("value") is None else str(t["value"]),
                effect=None if t.get("effect") is None else str(t["effect"]),
            )
        )
    count = body.get("accelerator_count", 1 if body.get("accelerator") else 0)
    if count < 0:
        raise ConfigError(
            f"{locate(*keys, 'accelerator_count')}: profiles.{name}.accelerator_count "
            f"must be 0 or more"
        )
    if count and not body.get("accelerator"):
        raise ConfigError(
            f"{locate(*keys, 'accelerator_count')}: profiles.{name} sets accelerator_count "
            f"without accelerator (for example accelerator = 'nvidia.com/gpu')"
        )
    cost = float(body.get("cost_per_hour", 0.0))
    if cost < 0:
        raise ConfigError(
            f"{locate(*keys, 'cost_per_hour')}: profiles.{name}.cost_per_hour must be 0 or more"
        )
    return Profile(
        name=name,
        cpu=_quantity(body.get("cpu"), locate, (*keys, "cpu")),
        memory=_quantity(body.get("memory"), locate, (*keys, "memory")),
        cpu_limit=_quantity(body.get("cpu_limit"), locate, (*keys, "cpu_limit")),
        memory_limit=_quantity(body.get("memory_limit"), locate, (*keys, "memory_limit")),
        accelerator=body.get("accelerator"),
        accelerator_count=count,
        node_selector=dict(node_selector),
        tolerations=tuple(tolerations),
        cost_per_hour=cost,
        description=body.get("description", ""),
    )


def _preset(name: str, body: Any, locate: _Locator) -> Preset:
    keys = ("presets", name)
    _expect_table(body, locate, keys)
    body = _check_keys(body, _PRESET_KEYS, locate, keys)
    if "image" not in body:
        raise ConfigError(
            f"{locate(*keys)}: presets.{name} needs image (for example image = 'python:3.11-slim')"
        )
    for list_key in ("packages", "pip_index_urls"):
        for item in body.get(list_key, []):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(
                    f"{locate(*keys, list_key)}: presets.{name}.{list_key} must be a list "
                    f"of non-empty strings"
                )
    return Preset(
        name=name,
        image=body["image"],
        packages=tuple(body.get("packages", [])),
        pip_index_urls=tuple(body.get("pip_index_urls", [])),
        description=body.get("description", ""),
    )
