"""Which columns of the training table the logged instances are."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench_dsl.backends.drift.reference import Reference, ReferenceNotFound, feature_columns

FRAME = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0], "target": [0]})


def _ref(**metadata: object) -> Reference:
    return Reference("e", "r", "models:/m/1", "p/t/data", None, "/x", "csv", dict(metadata))


def test_metadata_lists_the_features_even_as_the_lineage_keeps_it() -> None:
    # A list in artifact metadata reaches the lineage facet as its JSON text.
    assert feature_columns(_ref(columns='["c", "a"]'), FRAME, 2) == ["c", "a"]
    assert feature_columns(_ref(features=["b"]), FRAME, 1) == ["b"]


def test_the_label_is_left_out() -> None:
    assert feature_columns(_ref(label="c"), FRAME, 3) == ["a", "b", "target"]
    assert feature_columns(_ref(), FRAME, 3) == ["a", "b", "c"]  # 'target' by its name


def test_a_width_that_fits_nothing_says_how_to_name_the_features() -> None:
    with pytest.raises(ReferenceNotFound, match=r"metadata\['features'\]"):
        feature_columns(_ref(), FRAME, 7)
