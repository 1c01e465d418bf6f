"""``python -m workbench_dsl`` is the ``workbench`` command."""

from workbench_dsl.cli.app import main

main()
