"""Per-feature drift statistics: population stability index and a two-sample test.

PSI (https://www.mdpi.com/2227-9091/7/2/53, "The population stability index"):
``sum((a - e) * ln(a / e))`` over bins made from the *reference* data -- deciles of a
numeric feature (fewer when values repeat), the categories of a categorical one (values
never seen in training go to one extra bin) -- with empty bins floored at ``EPSILON`` so
that one empty bin does not make it infinite. The usual reading: below 0.1 stable, 0.1 to
0.2 a moderate shift, above 0.2 a significant one.

The test is Kolmogorov-Smirnov (``scipy.stats.ks_2samp``) for a numeric feature and a
chi-square test of the 2 x k table of bin counts (``scipy.stats.chi2_contingency``) for a
categorical one. A feature has drifted when *both* hold: its PSI reaches the PSI threshold
(the shift is large enough to matter) and the test's p-value is below the p threshold (it
is not the noise of a few requests: with 50 requests and ten bins PSI alone is about 0.2
on data drawn from the training distribution itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Floor of a bin's share, so that an empty bin costs a lot but not infinity.
EPSILON = 1e-4
#: Numeric bins (quantiles of the reference).
BINS = 10
#: A numeric column with at most this many distinct values is treated as categorical.
MAX_LEVELS = 10
#: Categories kept as bins of their own (the most frequent in the reference); the rest share one.
MAX_CATEGORIES = 20
OTHER = "<other>"


@dataclass(frozen=True)
class Thresholds:
    """When a feature has drifted (both must hold), and when an endpoint has."""

    psi: float = 0.2
    p_value: float = 0.01
    #: The endpoint has drifted when at least this many features have.
    features: int = 1
    #: Fewer logged requests than this is too few to say anything.
    min_requests: int = 50


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's figures and verdict."""

    name: str
    kind: str  # numeric | categorical
    psi: float
    test: str  # ks | chi2
    statistic: float
    p_value: float
    drifted: bool
    reference_n: int
    current_n: int

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.name,
            "kind": self.kind,
            "psi": round(self.psi, 6),
            "test": self.test,
            "statistic": round(self.statistic, 6),
            "p_value": float(f"{self.p_value:.6g}"),
            "drifted": self.drifted,
            "reference_n": self.reference_n,
            "current_n": self.current_n,
        }


def psi(expected: Any, actual: Any) -> float:
    """PSI of two count (or share) vectors over the same bins."""
    import numpy as np

    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / max(e.sum(), 1e-12), EPSILON)
    a = np.maximum(a / max(a.sum(), 1e-12), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def is_numeric(values: Any) -> bool:
    """Whether a reference column is compared as numbers (else as categories)."""
    import pandas as pd

    s = pd.Series(values)
    if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
        return False
    return int(s.nunique(dropna=True)) > MAX_LEVELS


def numeric_edges(reference: Any) -> Any:
    """Inner bin edges: the reference's deciles, without repeats."""
    import numpy as np

    ref = np.asarray(reference, dtype=float)
    ref = ref[np.isfinite(ref)]
    qs = (
        np.quantile(ref, np.linspace(0, 1, BINS + 1)[1:-1], method="lower")
        if ref.size
        else np.array([])
    )
    return np.unique(qs)


def compare_numeric(name: str, reference: Any, current: Any, t: Thresholds) -> FeatureDrift:
    import numpy as np
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    edges = numeric_edges(ref)
    # Bin i holds values in (edges[i-1], edges[i]]: the outer bins are open-ended.
    e = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    value = psi(e, a)
    if ref.size and cur.size:
        res = ks_2samp(ref, cur)
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = math.nan, 1.0
    return FeatureDrift(
        name, "numeric", value, "ks", stat, p, _drifted(value, p, t), int(ref.size), int(cur.size)
    )


def compare_categorical(name: str, reference: Any, current: Any, t: Thresholds) -> FeatureDrift:
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency

    ref, cur = pd.Series(reference).dropna(), pd.Series(current).dropna()
    if pd.api.types.is_numeric_dtype(ref) and ref.dtype != bool:
        # Codes: 1 in the training table and 1.0 in a JSON request are the same category.
        cur = pd.to_numeric(cur, errors="coerce")
        ref, cur = ref.astype(float).map("{:g}".format), cur.astype(float).map("{:g}".format)
    ref, cur = ref.astype(str), cur.astype(str)
    levels = list(ref.value_counts().index[:MAX_CATEGORIES])
    known = set(levels)
    bins = [*levels, OTHER]
    e = ref.where(ref.isin(known), OTHER).value_counts().reindex(bins, fill_value=0).to_numpy()
    a = cur.where(cur.isin(known), OTHER).value_counts().reindex(bins, fill_value=0).to_numpy()
    value = psi(e, a)
    table = np.vstack([e, a])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and e.sum() and a.sum():
        res = chi2_contingency(table)
        stat, p = float(res.statistic), float(res.pvalue)
    else:  # one category on both sides: nothing can differ
        stat, p = 0.0, 1.0
    return FeatureDrift(
        name,
        "categorical",
        value,
        "chi2",
        stat,
        p,
        _drifted(value, p, t),
        int(ref.size),
        int(cur.size),
    )


def compare(name: str, reference: Any, current: Any, t: Thresholds) -> FeatureDrift:
    """One feature, numeric or categorical as the reference column is."""
    if is_numeric(reference):
        import pandas as pd

        cur = pd.to_numeric(pd.Series(current), errors="coerce")
        return compare_numeric(name, reference, cur, t)
    return compare_categorical(name, reference, current, t)


def _drifted(value: float, p: float, t: Thresholds) -> bool:
    return value >= t.psi and p < t.p_value
