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
#: Path of the engine's Unix socket through which a task asks it to start a local
#: endpoint's server, the one kind of process that outlives the run. The engine
#: checks that the asking process belongs to the run and starts only that server,
#: as its own child (outside the run's cgroup and process tree); a task that
#: starts a process itself, whatever it sets, cannot make it outlive the run.
SPAWNER = "WORKBENCH_SPAWNER"
#: Bytes of output kept per attempt in its log (default 64 MiB); the rest is
#: dropped after a ``[workbench] log cut`` line. 0 keeps everything.
LOG_MAX_BYTES = "WORKBENCH_LOG_MAX_BYTES"
#: "0" stops the task runner from making a cgroup per run even where the host
#: allows it (it then ends processes by their tree, and limits memory by RLIMIT_AS).
CGROUPS = "WORKBENCH_CGROUPS"
#: Internal to the engine and its warm worker: the run's cgroup directory.
WORKER_CGROUP = "WORKBENCH_WORKER_CGROUP"
#: Variables of the engine's own processes that a task never sees: kfp's runtime
#: switch (set for the warm worker's import of kfp; a ``workbench`` started by a
#: task needs kfp whole) and the worker's cgroup. The task runner removes them
#: from every task's environment.
ENGINE_INTERNAL = ("_KFP_RUNTIME", WORKER_CGROUP)
#: The dashboard's access token (``workbench ui --token``'s variable).
UI_TOKEN = "WORKBENCH_UI_TOKEN"
#: The user's own secrets for local servers: never in a task's environment (with the
#: dashboard's token, code inside a run could approve what its own run waits on) nor in a
#: local endpoint's server.
USER_SECRETS = (UI_TOKEN,)
#: The per-task variables above: what a process that is not a task of the run
#: (a local endpoint's server) must not inherit.
TASK_VARIABLES = (ENGINE, RUN_ID, PIPELINE, TASK, ATTEMPT, RUN_DIR, STATUS_FILE, SPAWNER)


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
