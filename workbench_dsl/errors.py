"""User-facing errors: one line that says what is wrong and how to fix it.

Anything raised as a :class:`WorkbenchError` is shown by the CLI as that line,
with no traceback (``--debug`` shows it), and maps to the exit codes of
DESIGN.md: 2 for bad input or usage, 1 for a pipeline or job that failed.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """An error a user can act on; its message is the whole story."""

    exit_code = 2


class UsageError(WorkbenchError):
    """Bad input: a wrong argument, file, config value or pipeline definition."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid ``workbench.toml`` (the message names the key and line)."""


class PipelineDefinitionError(UsageError):
    """A pipeline that cannot be compiled as written (bad call, type, cycle)."""


class JobFailed(WorkbenchError):
    """A run, job or step that ran and failed."""

    exit_code = 1
