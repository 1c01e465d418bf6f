"""What every command shares: error handling, ``--json`` output, ``-p`` parameters.

A :class:`~workbench_dsl.errors.WorkbenchError` becomes one line on stderr and
its exit code (2 bad input, 1 failed job); anything else is a bug and says how
to see the traceback. ``--debug`` (or ``WORKBENCH_DEBUG=1``) re-raises instead.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from workbench_dsl.errors import UsageError, WorkbenchError

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = os.environ.get("WORKBENCH_DEBUG", "") not in ("", "0")


state = _State()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn user errors into one line and an exit code; keep tracebacks for --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except WorkbenchError as e:
            if state.debug:
                raise
            raise fail(str(e), e.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as e:
            if state.debug:
                raise
            raise fail(
                f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
                1,
            ) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_done(data: Any, as_json: bool, line: str) -> None:
    """What a command did: ``data`` as one JSON document with ``--json``, else ``line``."""
    if as_json:
        print_json(data)
    else:
        typer.echo(line)


def check_output(path: str, option: str) -> None:
    """Refuse an output path that is a directory, before any work is done."""
    from pathlib import Path

    if Path(path).is_dir():
        raise UsageError(
            f"{option} {path} is a directory: give a file, e.g. {option} {path}/NAME.yaml"
        )


def write_output(path: str, text: str, option: str) -> None:
    """Write a command's output file whole (or not at all); a path that cannot be written
    is one error line."""
    from pathlib import Path

    from workbench_dsl.compile.compiler import write_atomic

    check_output(path, option)
    try:
        write_atomic(Path(path), text)
    except OSError as e:
        raise UsageError(
            f"cannot write {path}: {e.strerror or e}; choose another {option}"
        ) from None


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``-p NAME=VALUE`` options as a dict of raw strings (typed later by the pipeline).

    A name given twice is refused: which one was meant is not ours to guess.
    """
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"bad parameter {item!r}: write -p NAME=VALUE")
        if name in out:
            raise UsageError(f"-p {name} given twice: give each parameter once")
        out[name] = value
    return out
