"""A step that reads a file it does not declare as an input (docs/runbooks/stale-cache.md)."""

from workbench_dsl import develop, pipeline


@develop
def count_rows(path: str) -> int:
    with open(path) as f:
        return len(f.read().split())


@pipeline(name="stale-cache")
def stale_cache(path: str) -> int:
    return count_rows(path=path).output
