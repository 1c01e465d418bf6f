"""A pipeline written in plain KFP: `workbench compile` takes it as it is."""

from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def hello(name: str) -> str:
    return f"hello {name}"


@dsl.pipeline(name="plain-kfp")
def plain_kfp(name: str = "world") -> str:
    return hello(name=name).output
