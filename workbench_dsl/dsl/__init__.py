"""The DSL: step decorators and ``@pipeline``, built on real ``kfp.dsl`` objects."""
