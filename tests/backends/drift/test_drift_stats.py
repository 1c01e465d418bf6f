"""PSI and the two-sample tests on generated data: drifted data is called drifted, the same
distribution is not."""

from __future__ import annotations

import numpy as np
import pytest

from workbench_dsl.backends.drift.stats import Thresholds, compare, numeric_edges, psi

T = Thresholds()
rng = np.random.default_rng(7)


def test_psi_of_identical_shares_is_zero_and_grows_with_the_shift() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    small, large = psi([50, 50], [45, 55]), psi([50, 50], [10, 90])
    assert 0 < small < 0.05 < 0.2 < large


def test_an_empty_bin_costs_a_lot_but_not_infinity() -> None:
    assert 1 < psi([50, 50, 0], [0, 50, 50]) < 100


def test_numeric_same_distribution_is_not_drifted() -> None:
    ref, cur = rng.normal(10, 2, 2000), rng.normal(10, 2, 300)
    f = compare("size", ref, cur, T)
    assert (f.kind, f.test, f.drifted) == ("numeric", "ks", False)
    assert f.psi < 0.1 and f.p_value > 0.01


def test_numeric_shift_is_drifted() -> None:
    ref, cur = rng.normal(10, 2, 2000), rng.normal(13, 2, 300)
    f = compare("size", ref, cur, T)
    assert f.drifted and f.psi > 0.5 and f.p_value < 1e-6


def test_a_few_requests_alone_do_not_make_drift() -> None:
    # PSI of 20 draws from the training distribution is large by chance; the test is not.
    ref, cur = rng.normal(0, 1, 2000), rng.normal(0, 1, 20)
    f = compare("x", ref, cur, T)
    assert not f.drifted


def test_categorical_uses_chi_square_and_sees_a_new_mix() -> None:
    ref = rng.choice(["red", "green", "blue"], 2000, p=[0.5, 0.3, 0.2])
    same = rng.choice(["red", "green", "blue"], 400, p=[0.5, 0.3, 0.2])
    moved = rng.choice(["red", "green", "blue", "pink"], 400, p=[0.1, 0.2, 0.3, 0.4])
    a, b = compare("colour", ref, same, T), compare("colour", ref, moved, T)
    assert (a.kind, a.test, a.drifted) == ("categorical", "chi2", False)
    assert b.drifted and b.psi > 1


def test_integer_codes_are_categories_and_json_floats_match_them() -> None:
    ref = rng.choice([0, 1, 2], 1000)
    f = compare("code", ref, [float(v) for v in rng.choice([0, 1, 2], 300)], T)
    assert f.kind == "categorical" and not f.drifted


def test_bins_come_from_the_reference_quantiles() -> None:
    edges = numeric_edges(np.arange(1000))
    assert len(edges) == 9 and edges[0] == 99
    assert len(numeric_edges(np.array([1.0] * 50 + [2.0] * 50))) <= 2  # repeats collapse


def test_thresholds_are_the_verdicts() -> None:
    ref, cur = rng.normal(0, 1, 2000), rng.normal(0.4, 1, 500)
    f = compare("x", ref, cur, T)
    assert compare("x", ref, cur, Thresholds(psi=f.psi + 0.01)).drifted is False
    assert compare("x", ref, cur, Thresholds(psi=f.psi - 0.01, p_value=1.0)).drifted is True
