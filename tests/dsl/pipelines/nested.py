"""A pipeline used as a step of another pipeline, and an explicit .after() ordering."""

from workbench_dsl import develop, pipeline


@develop
def add(a: int, b: int) -> int:
    return a + b


@pipeline(name="inner")
def inner(x: int = 1) -> int:
    return add(a=x, b=10).output


@pipeline(name="outer")
def outer(x: int = 5) -> int:
    first = add(a=x, b=1)
    nested = inner(x=first.output)
    last = add(a=nested.output, b=100)
    audit = add(a=0, b=0)
    audit.after(last)
    return last.output
