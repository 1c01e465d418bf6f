"""The local engine: executes a compiled KFP PipelineSpec on one machine.

It consumes only the PipelineSpec (the YAML a cluster would get) and never
imports ``workbench_dsl.dsl`` or ``workbench_dsl.compile``.
"""
