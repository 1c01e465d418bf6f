"""The contract between the engine's scheduler and the code that runs one task attempt.

The scheduler (``engine/`` orchestration: DAG, control flow, caching, run store)
decides *what* runs and builds a :class:`TaskSpec`: the executor definition
from the PipelineSpec's ``deploymentSpec``, a fully built KFP ``ExecutorInput``
and the environment. The task runner (``engine/runner.py``) decides *how*: warm
forked workers for KFP lightweight Python components, a host subprocess for
container components, isolation, timeouts, cancellation, logs. It returns a
:class:`TaskOutcome` with the executor output in KFP's own shape.

Neither side knows about the other's internals; both sides are tested through
these two dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

OutcomeStatus = Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"]


@dataclass(frozen=True)
class TaskSpec:
    """One attempt of one task, ready to execute.

    Attributes:
        run_id: The run this attempt belongs to.
        task: Qualified task name, unique in the run (e.g. ``for-loop-2[1]/train``).
        attempt: 1 for the first attempt, 2 for the first retry, ...
        executor: ``deploymentSpec.executors[<label>]`` of the PipelineSpec as a
            dict: ``{"container": {"image", "command", "args", "env", ...}}``.
            (Importers are resolved by the scheduler and never reach the runner.)
        executor_input: KFP's ExecutorInput as JSON-ready dict: ``inputs``
            (``parameterValues``, ``artifacts``) and ``outputs`` (``parameters``
            with ``outputFile``, ``artifacts`` with ``uri``/``type``/``metadata``,
            and ``outputFile`` for executor_output.json). Every path in it is
            absolute and local; output paths lie under ``workdir``.
        env: Extra environment for the task: the container's ``env`` from the
            spec plus the ``workbench_dsl._env`` contract variables. The runner
            layers it over the engine's own environment.
        workdir: A fresh directory private to this attempt (the task's cwd).
        log_path: Where stdout and stderr of the attempt go (one file, appended).
        timeout: Seconds before the attempt is killed (``TIMED_OUT``), or None.
        mounts: Volumes the attempt sees at their paths (``engine/mounts.py``).
        mask: Secret values the attempt reads, masked as ``***`` in its log.
    """

    run_id: str
    task: str
    attempt: int
    executor: dict[str, Any]
    executor_input: dict[str, Any]
    env: dict[str, str]
    workdir: Path
    log_path: Path
    timeout: float | None = None
    mounts: tuple[dict[str, Any], ...] = ()
    mask: tuple[str, ...] = ()


@dataclass
class TaskOutcome:
    """What came of one attempt.

    Attributes:
        status: ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT`` or ``CANCELLED``.
        executor_output: KFP's ExecutorOutput shape: ``{"parameterValues": {name:
            value}, "artifacts": {name: {"artifacts": [{"uri", "metadata", ...}]}}}``.
            For container components, values read from the output parameter
            files come back as the raw strings; the scheduler types them.
        error: One line for a person: the exception and message of a Python
            component, the exit code of a program, "timed out after 30s", ...
        exit_code: The process's exit code when there was one.
        duration_s: Wall time of the attempt.
        notices: Things the user should hear once per run (for example "container
            image python:3.9 is not used locally; its command runs on the host").
    """

    status: OutcomeStatus
    executor_output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    duration_s: float = 0.0
    notices: list[str] = field(default_factory=list)
