"""Drift of a local endpoint's inputs: its request log against the data its model was trained on.

:mod:`.stats` holds the per-feature statistics (population stability index, the
Kolmogorov-Smirnov and chi-square two-sample tests), :mod:`.reference` finds the
training dataset of the serving revision through lineage, and :mod:`.report` puts
them together for ``workbench endpoints drift``, ``/metrics`` and ``drift:`` triggers.
"""
