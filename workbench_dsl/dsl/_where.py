"""Source locations for error messages: the user's ``file:line``, never ours or KFP's."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

_PKG_DIR = str(Path(__file__).resolve().parents[1])


def _is_library_file(filename: str) -> bool:
    path = os.path.abspath(filename)
    return (
        path.startswith(_PKG_DIR)
        or f"{os.sep}site-packages{os.sep}" in path
        or f"{os.sep}lib{os.sep}python3" in path
        or filename.startswith("<")
    )


def short_path(filename: str) -> str:
    """A path relative to the cwd when it is below it, else as given."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def function_location(fn: Callable[..., Any]) -> str:
    """``file:line`` of a function's ``def``."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", repr(fn))
    return f"{short_path(code.co_filename)}:{code.co_firstlineno}"


def caller_location() -> str:
    """``file:line`` of the nearest frame on the stack that is user code."""
    frame = sys._getframe(1)
    while frame is not None:
        if not _is_library_file(frame.f_code.co_filename):
            return f"{short_path(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<pipeline>"


def traceback_location(tb: TracebackType | None) -> str | None:
    """``file:line`` of the innermost user frame in a traceback."""
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        if not _is_library_file(frame.f_code.co_filename):
            found = f"{short_path(frame.f_code.co_filename)}:{lineno}"
    return found
