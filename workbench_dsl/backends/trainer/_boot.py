"""The first code each local rank runs: tie its life to the trainer's, then run the program.

``python -m workbench_dsl.backends.trainer._boot MODULE`` arranges to be
killed when the process that started it dies (so a SIGKILLed task leaves no
rank behind), runs ``MODULE`` as ``__main__``, and on an exception writes the
error to ``$WORKBENCH_RANK_ERROR_FILE`` so the trainer can report the failing
rank's own error rather than "exit code 1".
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
import traceback

from workbench_dsl.backends.trainer._process import die_with_parent


def main() -> None:
    parent = os.environ.get("WORKBENCH_PARENT_PID")
    die_with_parent(int(parent) if parent else None)
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m workbench_dsl.backends.trainer._boot MODULE [ARGS]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except BaseException as e:
        path = os.environ.get("WORKBENCH_RANK_ERROR_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(
                    {
                        "time": time.time(),
                        "type": type(e).__name__,
                        "message": str(e),
                        "traceback": traceback.format_exc(),
                    },
                    f,
                )
        raise


if __name__ == "__main__":
    main()
