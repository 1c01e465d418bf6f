"""Code that runs inside a task: the bodies of the compiled launcher components.

A launcher decides at run time, from its environment (``workbench_dsl._env``),
whether it runs under the local engine or on a cluster, and calls the matching
backend. It imports backends only: never the DSL, the compiler or the engine.
"""
