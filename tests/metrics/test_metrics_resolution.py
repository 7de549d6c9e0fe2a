"""Resolution estimators on seeded Gaussian samples with and without tails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lhcml.metrics.resolution import (
    binned_resolution,
    clipped_rms,
    estimate,
    gaussian_core,
    quantiles,
    rms,
    sigma68,
)


@pytest.fixture(scope="module")
def gauss() -> np.ndarray:
    return np.random.default_rng(42).normal(0.3, 2.0, 50_000)


@pytest.fixture(scope="module")
def tails(gauss: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(7)
    out = gauss.copy()
    wide = rng.random(len(out)) < 0.05  # 5 % of entries from a 10x wider Gaussian
    out[wide] = rng.normal(0.3, 20.0, wide.sum())
    return out


def test_estimators_recover_sigma_2(gauss: np.ndarray) -> None:
    assert rms(gauss).width == pytest.approx(2.0, rel=0.02)
    # 3-sigma clipping of a pure Gaussian converges ~1.4 % low (documented truncation).
    assert clipped_rms(gauss).width == pytest.approx(2.0 * 0.986, rel=0.02)
    core = gaussian_core(gauss)
    assert core.width == pytest.approx(2.0, rel=0.02)
    assert core.mean == pytest.approx(0.3, abs=0.05)
    assert 0 < core.width_err < 0.05
    s68 = sigma68(gauss)
    assert s68.width == pytest.approx(2.0, rel=0.02)
    assert s68.mean == pytest.approx(0.3, abs=0.05)


def test_errors_match_the_spread_over_samples() -> None:
    # The quoted width errors should describe the scatter of the estimate between samples.
    rng = np.random.default_rng(1)
    samples = rng.normal(0.0, 2.0, (200, 2000))
    for fn in (clipped_rms, sigma68):
        ests = [fn(s) for s in samples]
        spread = np.std([e.width for e in ests])
        quoted = np.mean([e.width_err for e in ests])
        assert quoted == pytest.approx(spread, rel=0.3), fn.__name__


def test_tails_spoil_rms_but_not_clipped_or_core(tails: np.ndarray) -> None:
    assert rms(tails).width > 4.0  # sqrt(0.95 * 4 + 0.05 * 400) ~ 4.9
    assert clipped_rms(tails).width == pytest.approx(2.0, rel=0.05)
    assert gaussian_core(tails).width == pytest.approx(2.0, rel=0.03)
    # sigma68 is robust but widened by the tails (they take 5 % of the central 68 %).
    assert 2.0 < sigma68(tails).width < 2.4


def test_quantiles_and_dispatch(gauss: np.ndarray) -> None:
    q = quantiles(gauss, [0.5])
    assert q[0] == pytest.approx(0.3, abs=0.05)
    assert np.isnan(quantiles([], [0.5])[0])
    assert estimate(gauss, "sigma68") == sigma68(gauss)
    with pytest.raises(ValueError, match="unknown resolution method"):
        estimate(gauss, "mad")  # type: ignore[arg-type]


def test_degenerate_inputs_are_nan() -> None:
    for fn in (rms, clipped_rms, sigma68, gaussian_core):
        e = fn([1.0])
        assert math.isnan(e.width), fn.__name__
    assert math.isnan(gaussian_core(np.full(100, 3.0)).width)  # zero width: no fit
    assert math.isnan(gaussian_core(np.random.default_rng(0).normal(size=15)).width)


def test_binned_resolution_versus_x() -> None:
    # Width grows with x: sigma = 1 + |x| in bins of x.
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 3.0, 60_000)
    values = rng.normal(0.0, 1.0 + np.floor(x))
    x_extra = np.r_[x, 5.0]  # one entry outside the bins
    values_extra = np.r_[values, 100.0]
    for method in ("clipped_rms", "gauss", "sigma68"):
        b = binned_resolution(values_extra, x_extra, [0.0, 1.0, 2.0, 3.0], method)  # type: ignore[arg-type]
        np.testing.assert_allclose(b.width, [1.0, 2.0, 3.0], rtol=0.03)
        assert b.n.sum() == 60_000
    sparse = binned_resolution(values[:5], x[:5], [0.0, 3.0], "rms", min_entries=10)
    assert math.isnan(sparse.width[0]) and sparse.to_dict()["width"] == [None]
    with pytest.raises(ValueError, match="differ in length"):
        binned_resolution(values, x[:-1], [0.0, 1.0])
