"""Binomial intervals and ratio containers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lhcml.metrics.stats import ONE_SIGMA, BinnedRatio, Ratio, bin_index, binomial_interval


def test_clopper_pearson_closed_forms() -> None:
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n).
    a = (1 - ONE_SIGMA) / 2
    low, high = binomial_interval([0, 10], [10, 10])
    assert low[0] == 0.0 and high[0] == pytest.approx(1 - a**0.1)
    assert low[1] == pytest.approx(a**0.1) and high[1] == 1.0


@pytest.mark.parametrize(("k", "n"), [(1, 3), (7, 20), (50, 51), (300, 1000)])
@pytest.mark.parametrize(
    ("method", "scipy_method"), [("clopper-pearson", "exact"), ("wilson", "wilson")]
)
def test_intervals_agree_with_scipy_binomtest(k, n, method, scipy_method) -> None:  # type: ignore[no-untyped-def]
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=ONE_SIGMA, method=scipy_method)
    low, high = binomial_interval(k, n, method=method)
    assert float(low) == pytest.approx(ci.low, rel=1e-9)
    assert float(high) == pytest.approx(ci.high, rel=1e-9)


def test_empty_and_invalid() -> None:
    low, high = binomial_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)
    r = Ratio.from_counts(0, 0)
    assert math.isnan(r.value) and r.to_dict() == {
        "k": 0,
        "n": 0,
        "value": None,
        "low": None,
        "high": None,
    }
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_interval(3, 2)
    with pytest.raises(ValueError, match="unknown interval"):
        binomial_interval(1, 2, method="bayes")  # type: ignore[arg-type]


def test_ratio_errors() -> None:
    r = Ratio.from_counts(3, 4)
    assert r.value == 0.75 and r.low < 0.75 < r.high
    assert r.err_low == pytest.approx(0.75 - r.low) and r.err_high == pytest.approx(r.high - 0.75)


def test_bins_are_half_open() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(
        bin_index(np.array([-0.5, 0.0, 0.99, 1.0, 2.0, np.nan]), edges), [-1, 0, 0, 1, -1, -1]
    )
    b = BinnedRatio.from_values(
        "x", np.array([0.5, 0.5, 1.5, 2.0, 3.0]), np.array([1, 0, 1, 1, 1]), edges
    )
    assert b.k.tolist() == [1, 1] and b.n.tolist() == [2, 1]
    np.testing.assert_allclose(b.centers, [0.5, 1.5])
