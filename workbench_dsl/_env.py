"""The environment contract between the local engine and the code a task runs.

The engine sets these variables for every task attempt it starts; the compiled
launcher components (``workbench_dsl.runtime``) read them to decide, at run
time, whether they run locally or on a cluster. On a cluster none of the
``WORKBENCH_ENGINE``-dependent ones are set, so the same compiled component
takes its Kubernetes path there. Nothing here imports anything heavy.
"""

from __future__ import annotations

import os

#: "local" when the task runs under the local engine; unset on a cluster.
ENGINE = "WORKBENCH_ENGINE"
#: Absolute path of the local root (runs.db, artifacts/, logs/, mlflow.db, ...).
HOME = "WORKBENCH_HOME"
#: The run's id and the pipeline's name.
RUN_ID = "WORKBENCH_RUN_ID"
PIPELINE = "WORKBENCH_PIPELINE"
#: The task's qualified name in the run (e.g. ``for-loop-2[1]/train``).
TASK = "WORKBENCH_TASK"
#: 1 for the first attempt, 2 for the first retry, ...
ATTEMPT = "WORKBENCH_ATTEMPT"
#: A directory private to the run that survives resume (study journals, ...).
RUN_DIR = "WORKBENCH_RUN_DIR"
#: A file the task may overwrite with one short line of progress; the engine
#: shows it in its live view and in ``workbench runs show``.
STATUS_FILE = "WORKBENCH_STATUS_FILE"
#: Set (to "1") in the environment of a process a task starts on purpose to outlive
#: the run, such as a local endpoint's server: the engine's task runner, which
#: otherwise ends whatever attempts leave behind when it closes, spares it.
DETACHED = "WORKBENCH_DETACHED"


def running_locally() -> bool:
    """True when the current process is a task started by the local engine."""
    return os.environ.get(ENGINE) == "local"


def set_status(line: str) -> None:
    """Publish one line of progress for the current task (no-op outside the engine)."""
    path = os.environ.get(STATUS_FILE)
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(line.replace("\n", " ")[:300])
    os.replace(tmp, path)
