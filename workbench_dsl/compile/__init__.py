"""Compilation: a pipeline (DSL or plain KFP) to deterministic, validated KFP v2 YAML."""
