"""Options every step kind shares (profile, preset, cache, retries, timeout, env), validated once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.errors import PipelineDefinitionError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_duration(value: float | int | str, what: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise PipelineDefinitionError(f"{what} must be a duration such as 30, '30s', '5m' or '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise PipelineDefinitionError(
                f"{what}={value!r} is not a duration: write seconds or '30s', '5m', '2h', '1d'"
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise PipelineDefinitionError(f"{what} must be positive (got {value!r})")
    return seconds


@dataclass(frozen=True)
class StepOptions:
    """Validated options of one decorated step."""

    preset: str | None = None
    profile: str | None = None
    cache: bool = True
    retries: int = 0
    retry_backoff: float | None = None
    timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        step: str,
        *,
        preset: str | None = None,
        profile: str | None = None,
        cache: bool = True,
        retries: int = 0,
        retry_backoff: float | int | str | None = None,
        timeout: float | int | str | None = None,
        env: dict[str, Any] | None = None,
    ) -> StepOptions:
        for name, value in (("preset", preset), ("profile", profile)):
            if value is not None and (not isinstance(value, str) or not value):
                raise PipelineDefinitionError(f"{step}: {name} must be a name from workbench.toml")
        if not isinstance(cache, bool):
            raise PipelineDefinitionError(f"{step}: cache must be True or False")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise PipelineDefinitionError(
                f"{step}: retries must be a whole number >= 0 (got {retries!r})"
            )
        backoff = None
        if retry_backoff is not None:
            if retries == 0:
                raise PipelineDefinitionError(
                    f"{step}: retry_backoff is set but retries is 0; set retries=N too"
                )
            backoff = parse_duration(retry_backoff, f"{step}: retry_backoff")
        seconds = None if timeout is None else parse_duration(timeout, f"{step}: timeout")
        env_out: dict[str, str] = {}
        for k, v in (env or {}).items():
            if not isinstance(k, str) or not _ENV_NAME.match(k):
                raise PipelineDefinitionError(
                    f"{step}: env name {k!r} is not a valid variable name"
                )
            if not isinstance(v, str | int | float | bool):
                raise PipelineDefinitionError(
                    f"{step}: env[{k!r}] must be a string or number (got {type(v).__name__})"
                )
            env_out[k] = str(v)
        return cls(
            preset=preset,
            profile=profile,
            cache=cache,
            retries=retries,
            retry_backoff=backoff,
            timeout=seconds,
            env=dict(sorted(env_out.items())),
        )
