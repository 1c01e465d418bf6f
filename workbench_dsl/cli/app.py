"""The ``workbench`` typer app: global options and discovery of the command modules.

Each module beside this one that defines ``register(app)`` adds its commands.
Nothing heavy (kfp, mlflow, kserve, pandas) is imported until a command runs,
so ``workbench --help`` starts fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from workbench_dsl._version import __version__
from workbench_dsl.cli import _common

app = typer.Typer(
    name="workbench",
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


def main() -> None:
    """Console-script entry point."""
    app()
