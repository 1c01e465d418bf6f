"""The replay's child process: one task's function through KFP's executor, in this terminal.

Run as ``python -m workbench_dsl.replay._child REQUEST.json`` by ``_plan.execute``.
It does what the engine's warm worker does for an attempt (``kfp.dsl.executor_main``
on the component's program), plus two things a replay needs: a launcher step's
``launch`` is swapped for the replay of the user's function (``_launchers.py``),
and with ``debug`` an exception stops in ``pdb`` at the innermost frame of the
task's own code rather than deep inside a library it called.
"""

from __future__ import annotations

import json
import logging
import os
import pdb
import sys
import traceback
from types import FrameType, TracebackType
from typing import Any


class _TaskPdb(pdb.Pdb):
    """``pdb`` that opens at the task's own innermost frame (its program or step source)."""

    def __init__(self, own_files: set[str]) -> None:
        super().__init__()
        self.own_files = own_files

    def setup(self, f: FrameType | None, tb: TracebackType | None) -> None:
        super().setup(f, tb)
        for i in range(len(self.stack) - 1, -1, -1):
            frame = self.stack[i][0]
            if frame.f_code.co_filename in self.own_files:
                self.curindex = i
                self.curframe = frame
                self.curframe_locals = frame.f_locals
                break


def post_mortem(tb: TracebackType, own_files: set[str]) -> None:
    debugger = _TaskPdb(own_files)
    debugger.reset()
    debugger.interaction(None, tb)


class _QuietKfp(logging.Filter):
    """Drop KFP executor's INFO lines (it prints the whole ExecutorInput); keep the task's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or f"{os.sep}kfp{os.sep}" not in record.pathname


def main(request_path: str) -> int:
    with open(request_path, encoding="utf-8") as f:
        req: dict[str, Any] = json.load(f)
    os.chdir(req["cwd"])
    sys.path[:0] = [req["cwd"]]
    launcher = req.get("launcher")
    own = {req["program"]}
    if launcher:
        from workbench_dsl.replay._launchers import install

        own.add(install(launcher))
    sys.argv = [
        "executor_main",
        "--component_module_path",
        req["program"],
        "--executor_input",
        json.dumps(req["executor_input"]),
        "--function_to_execute",
        req["function"],
    ]
    from kfp.dsl import executor_main

    # What executor_main itself would set up (its basicConfig then does nothing), less its noise.
    logging.basicConfig(
        stream=sys.stdout,
        format="[KFP Executor %(asctime)s %(levelname)s]: %(message)s",
        level=logging.INFO,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietKfp())
    try:
        executor_main.executor_main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:
        traceback.print_exc()
        if req.get("debug") and exc.__traceback__ is not None:
            print("\nreplay: the task raised; post-mortem debugging (q to quit)", file=sys.stderr)
            post_mortem(exc.__traceback__, own)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
