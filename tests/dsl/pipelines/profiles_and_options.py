"""Profiles, presets, caching, retries with backoff, timeouts and env vars."""

from workbench_dsl import develop, pipeline


@develop(
    profile="gpu-a100",
    preset="data",
    retries=3,
    retry_backoff="30s",
    timeout="2h",
    env={"OMP_NUM_THREADS": 4, "MODE": "fast"},
)
def heavy(n: int) -> int:
    return n


@develop(profile="cpu-large", cache=False)
def light(n: int) -> int:
    return n + 1


@pipeline(name="profiles-and-options")
def profiles_and_options(n: int = 1) -> int:
    h = heavy(n=n)
    return light(n=h.output).output
