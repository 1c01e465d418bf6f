"""The orchestrator: runs a PipelineSpec's DAG on one machine as an explicit state machine.

* :mod:`.states` -- every state a task can be in, and which transitions are legal;
* :mod:`.messages` -- the typed messages on the loop's one queue;
* :mod:`.loop` -- the loop: takes messages, applies transitions, starts what is ready;
* :mod:`.scopes` -- DAGs, ``ParallelFor`` loops and their iterations;
* :mod:`.launch` -- container tasks: cache lookup, attempts, retries, outputs;
* :mod:`.importers` -- ``dsl.importer`` tasks and the kfp-kubernetes platform stubs;
* :mod:`.recorder` -- the only writer of the run store, mirroring each transition;
* :mod:`.summary` -- what a finished run returns.

This package's ``__init__`` imports nothing, so :mod:`.states` can be imported by
``engine/graph.py`` (whose nodes carry a state) without a cycle.
"""
