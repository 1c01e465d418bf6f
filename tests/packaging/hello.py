"""A small pipeline the installed package runs outside the checkout: a parameter and an artifact."""

from workbench_dsl import Dataset, Input, Output, develop, pipeline


@develop
def write_words(count: int, words: Output[Dataset]):
    with open(words.path, "w") as f:
        f.write("\n".join(f"word{i}" for i in range(count)))


@develop
def count_words(words: Input[Dataset]) -> int:
    with open(words.path) as f:
        return len(f.read().split())


@pipeline(name="hello-installed")
def hello(count: int = 3) -> int:
    written = write_words(count=count)
    return count_words(words=written.outputs["words"]).output
