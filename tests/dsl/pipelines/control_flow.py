"""If/Elif/Else, ParallelFor with parallelism, Collected, ExitHandler."""

from typing import List

from workbench_dsl import Collected, Elif, Else, ExitHandler, If, ParallelFor, develop, pipeline


@develop
def coin(seed: int) -> str:
    return "heads" if seed % 2 == 0 else "tails"


@develop
def square(x: int) -> int:
    return x * x


@develop
def total(values: List[int]) -> int:
    return sum(values)


@develop
def say(message: str) -> str:
    return message


@pipeline(name="control-flow")
def control_flow(seed: int = 2, items: List[int] = [1, 2, 3]) -> int:  # noqa: B006 - KFP default
    with ExitHandler(exit_task=say(message="cleanup")):
        flip = coin(seed=seed)
        with If(flip.output == "heads"):
            say(message="heads")
        with Elif(flip.output == "tails"):
            say(message="tails")
        with Else():
            say(message="edge")
    with ParallelFor(items, parallelism=2) as item:
        sq = square(x=item)
    summed = total(values=Collected(sq.output))
    return summed.output
