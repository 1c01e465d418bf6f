"""The ``workbench`` typer app: global options and discovery of the command modules.

Each module beside this one that defines ``register(app)`` adds its commands.
Nothing heavy (kfp, mlflow, kserve, pandas) is imported until a command runs,
so ``workbench --help`` starts fast.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import typer
from typer._click import exceptions as _click_errors
from typer.core import TyperGroup

from workbench_dsl._version import __version__
from workbench_dsl.cli import _common


class _OneLineErrors(TyperGroup):
    """The root group: what the option parser rejects is one ``error:`` line, as any bad input.

    Click's own display is a usage block and a framed box (five lines or more);
    here it is the message and the command whose ``--help`` explains it, exit 2.
    No arguments at all still shows the help.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _click_errors.NoArgsIsHelpError as e:
            e.show()
            sys.exit(e.exit_code)
        except _click_errors.ClickException as e:
            sys.exit(_usage_line(e))
        except typer.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_line(e: _click_errors.ClickException) -> int:
    message = " ".join(e.format_message().split()).rstrip(".")
    if message[:2].istitle():  # "Missing argument 'X'" -> "missing argument 'X'"
        message = message[0].lower() + message[1:]
    ctx = getattr(e, "ctx", None)
    where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    print(f"error: {message}{where}", file=sys.stderr)
    return e.exit_code


app = typer.Typer(
    name="workbench",
    cls=_OneLineErrors,
    help="ML workflows on Kubeflow Pipelines: run locally, compile for a cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"workbench-dsl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks for errors.", envvar="WORKBENCH_DEBUG"
    ),
) -> None:
    """ML workflows on Kubeflow Pipelines: run locally, compile for a cluster."""
    _common.state.debug = _common.state.debug or debug


def _register_commands() -> None:
    import workbench_dsl.cli as pkg

    modules = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "app":
            continue
        module = importlib.import_module(f"workbench_dsl.cli.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(app)


_register_commands()


class _Stdout:
    """``sys.stdout`` that ends the program quietly when the reader has gone (``| head -1``).

    A closed pipe is the reader saying "enough", not an error: every command
    writes through this, so none of them ends with an internal BrokenPipeError.
    SIGPIPE is left ignored (as Python sets it): restoring its default would
    also kill the engine when a worker or a socket goes away.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _reader_gone()

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _reader_gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _reader_gone() -> NoReturn:
    # What is still buffered goes nowhere, so the flush at exit cannot fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise SystemExit(141)  # as a shell reports a program ended by SIGPIPE


def main() -> None:
    """Console-script entry point."""
    if not isinstance(sys.stdout, _Stdout):
        sys.stdout = _Stdout(sys.stdout)  # type: ignore[assignment]
    try:
        app()
    except BrokenPipeError:  # written past the wrapper (a library's own handle)
        _reader_gone()
