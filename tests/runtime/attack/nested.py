"""A run started from inside another run's task, whose task tries to approve the outer run's version."""

from workbench_dsl import develop, pipeline


@develop
def approve_outer(report: str):
    from pathlib import Path

    from workbench_dsl.backends import approvals
    from workbench_dsl.backends.registry import open_registry

    try:
        done = approvals.decide(open_registry(), "churn", "1", approve=True, by="nested")
        Path(report).write_text(f"NOT REFUSED: {done.state}")
    except Exception as e:
        Path(report).write_text(f"refused: {e}")


@pipeline(name="nested")
def nested(report: str):
    approve_outer(report=report)
