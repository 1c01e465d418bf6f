"""``workbench_dsl.run()``: run a pipeline on this machine from Python.

The same engine as ``workbench run``: the pipeline is compiled to KFP YAML (if
it is not already) and the engine executes that YAML. Example::

    from workbench_dsl import run

    result = run("pipelines/quickstart.py", params={"n_estimators": 20})
    assert result.ok, result.error
    print(result.outputs["Output"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.errors import UsageError

__all__ = ["RunResult", "run"]


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        run_id: The run's id (``workbench runs show RUN_ID``).
        status: ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``.
        tasks: One dict per task: ``name``, ``status``, ``cached``, ``attempts``, ``duration_s``.
        outputs: The pipeline's outputs by name (a single return is ``Output``);
            an artifact is a dict with ``uri``/``path``, ``type``, ``metadata``, ``sha256``.
        error: The first failure (task and one-line error), if any.
        failures: Every failed task with its error and log path.
    """

    run_id: str
    status: str
    tasks: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


def _source_text(pipeline_or_path: Any) -> tuple[str, str | None]:
    """Compiled YAML for any accepted kind of pipeline, and a label for the run store."""
    if isinstance(pipeline_or_path, (str, os.PathLike)):
        ref = os.fspath(pipeline_or_path)
        from workbench_dsl.compile.compiler import compile_to_text
        from workbench_dsl.compile.loader import is_compiled_file, load_pipeline, read_compiled

        if is_compiled_file(ref):
            return read_compiled(ref), ref

        return compile_to_text(load_pipeline(ref)), ref
    from workbench_dsl.compile.compiler import compile_to_text
    from workbench_dsl.compile.loader import is_pipeline, pipeline_name

    if not is_pipeline(pipeline_or_path):
        raise UsageError(
            f"run() takes a @pipeline, a KFP pipeline, a compiled YAML path or a module ref, "
            f"not {type(pipeline_or_path).__name__}"
        )
    return compile_to_text(pipeline_or_path), pipeline_name(pipeline_or_path)


def run(
    pipeline_or_path: Any,
    params: dict[str, Any] | None = None,
    cache: bool = True,
    max_parallel: int | None = None,
    *,
    observers: list[Any] | None = None,
    quiet: bool = True,
    experiment: str = "Default",
    inputs: dict[str, str] | None = None,
) -> RunResult:
    """Run a pipeline locally and wait for it to end.

    Args:
        pipeline_or_path: A ``@pipeline`` (this DSL), a KFP pipeline (GraphComponent),
            a compiled YAML path, or a module reference ``path/to/module.py[:name]``.
        params: Pipeline parameters as Python values (typed by the pipeline's inputs).
        cache: Reuse cached task results where the pipeline enables caching.
        max_parallel: Most tasks at once (default: ``[engine] max_parallel`` in
            workbench.toml, else a function of the CPU count).
        observers: Extra :class:`workbench_dsl.engine.events.RunObserver` s.
        quiet: Print nothing but notices; ``False`` prints a line per task on stderr.
        experiment: The experiment to record the run under (KFP's ``Default`` if not given).
        inputs: Pipeline input artifacts (a root ``Input[Dataset]``...): name -> local path.

    Returns:
        A :class:`RunResult`; check ``.ok``. Bad input raises
        :class:`~workbench_dsl.errors.UsageError` before anything runs.
    """
    from workbench_dsl.engine import execute
    from workbench_dsl.engine.progress import PlainProgress

    text, origin = _source_text(pipeline_or_path)
    if max_parallel is None:
        from workbench_dsl.config import load_config

        configured = load_config().get("engine", "max_parallel")
        max_parallel = int(configured) if configured else None
    summary = execute.start(
        text,
        params or {},
        from_cli=False,
        cache=cache,
        max_parallel=max_parallel,
        observers=[PlainProgress(quiet=quiet), *(observers or [])],
        origin=origin,
        experiment=experiment,
        inputs={k: str(v) for k, v in (inputs or {}).items()},
    )
    error = None
    if summary.failures:
        f = summary.failures[0]
        error = f"{f['task']}: {f['error']}"
    elif summary.status == "CANCELLED":
        error = "cancelled"
    return RunResult(
        run_id=summary.run_id,
        status=summary.status,
        tasks=summary.tasks,
        outputs=summary.outputs,
        error=error,
        failures=summary.failures,
    )
