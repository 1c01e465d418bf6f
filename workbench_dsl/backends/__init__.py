"""Services a step talks to at run time, each with a local and a Kubernetes side.

Backends import neither ``workbench_dsl.dsl`` nor ``workbench_dsl.engine``.
"""
