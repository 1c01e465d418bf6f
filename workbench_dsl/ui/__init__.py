"""The local web dashboard, ``workbench ui``: runs, costs, sweeps, models, approvals, endpoints,
schedules and lineage of the local root in one place (see ``docs/ui.md``).

Nothing here is imported by ``workbench --help``; :func:`workbench_dsl.ui.server.serve`
starts it. Pages are rendered on the server (Jinja2 with autoescape, SVG drawn in
Python); a little vanilla JavaScript follows running runs and logs. Every asset is
part of the package: the dashboard works with no network.
"""
