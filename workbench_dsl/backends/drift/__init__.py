"""Drift of an endpoint's inputs: its logged requests against the data its model was trained on.

:mod:`.stats` holds the per-feature statistics (population stability index, the
Kolmogorov-Smirnov and chi-square two-sample tests), :mod:`.reference` finds the
training dataset of the serving revision through lineage, and :mod:`.report` puts
them together for ``workbench endpoints drift``, ``/metrics`` and ``drift:`` triggers.
:mod:`.cluster` makes the same report on a cluster, for the check step of a ``drift:``
trigger on KFP: KServe's stored payloads against the version's ``workbench.training_data``.
"""
