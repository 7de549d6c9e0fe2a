"""Resolution estimators for residual distributions (e.g. fitted minus true pT).

Each estimator returns a location (``mean``) and a width with statistical errors
(:class:`Estimate`):

- ``rms``: plain mean and standard deviation (``ddof=0``). Errors ``rms / sqrt(n)`` and
  ``rms / sqrt(2 (n - 1))`` (Gaussian approximation).
- ``clipped_rms``: iterative clipping: start from all values; repeatedly keep only
  ``|x - mean| < nsigma * rms`` of the current mean / RMS until the kept set stops
  changing. The width is the RMS of the kept values (not corrected for the truncation:
  for a pure Gaussian and ``nsigma = 3`` it converges to about 0.986 sigma). Errors as
  for ``rms`` with the kept count.
- ``gauss``: Gaussian fit to the core. Starting from the clipped mean / RMS, histogram the
  values in ``mean +- nsigma * width`` (default 2) and fit the expected bin contents of a
  Gaussian, ``A * (Phi((hi - mu) / s) - Phi((lo - mu) / s))`` (exact for finite bins), by
  least squares with Poisson errors (``scipy.optimize.curve_fit``); the range is re-centred
  on the fit result and the fit repeated. Errors from the fit covariance.
- ``sigma68``: half the width of the central 68.27 % interval, ``(q(0.8413) -
  q(0.1587)) / 2``, located at the median. Errors from order statistics: a quantile's
  error is half the spread of the order statistics ``sqrt(n q (1 - q))`` ranks away; the
  two quantile errors are added in quadrature and halved (their small correlation
  ignored).

Binned versions (:func:`binned_resolution`) apply one estimator per bin of another
variable (pT, eta, ...).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lhcml.metrics.stats import ONE_SIGMA, bin_index

Method = Literal["rms", "clipped_rms", "gauss", "sigma68"]
METHODS: tuple[str, ...] = ("rms", "clipped_rms", "gauss", "sigma68")
_Q_LOW = 0.5 * (1.0 - ONE_SIGMA)
_Q_HIGH = 0.5 * (1.0 + ONE_SIGMA)


@dataclass(frozen=True)
class Estimate:
    """Location and width of a distribution with their errors.

    ``n`` is the number of values the estimate used (after clipping / in the fit range);
    all numbers are NaN when the estimator is undefined (too few values, failed fit).
    """

    method: str
    mean: float
    mean_err: float
    width: float
    width_err: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (``None`` for NaN)."""
        out: dict[str, Any] = {"method": self.method, "n": self.n}
        for name in ("mean", "mean_err", "width", "width_err"):
            v = getattr(self, name)
            out[name] = float(v) if math.isfinite(v) else None
        return out


def _nan(method: str, n: int = 0) -> Estimate:
    return Estimate(method, math.nan, math.nan, math.nan, math.nan, n)


def _finite(values: np.ndarray | Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def _moments(v: np.ndarray, method: str) -> Estimate:
    n = len(v)
    if n < 2:
        return _nan(method, n)
    mean = float(v.mean())
    rms = float(v.std())
    return Estimate(method, mean, rms / math.sqrt(n), rms, rms / math.sqrt(2 * (n - 1)), n)


def rms(values: np.ndarray | Sequence[float]) -> Estimate:
    """Plain mean and RMS of the finite values."""
    return _moments(_finite(values), "rms")


def clipped_rms(
    values: np.ndarray | Sequence[float], *, nsigma: float = 3.0, max_iter: int = 100
) -> Estimate:
    """Iteratively ``nsigma``-clipped mean and RMS (see the module docstring)."""
    v = _finite(values)
    if len(v) < 2:
        return _nan("clipped_rms", len(v))
    keep = np.ones(len(v), bool)
    for _ in range(max_iter):
        kept = v[keep]
        if len(kept) < 2:
            return _nan("clipped_rms", len(kept))
        mean, sd = kept.mean(), kept.std()
        new = np.abs(v - mean) < nsigma * sd if sd > 0 else v == mean
        if np.array_equal(new, keep):
            break
        keep = new
    est = _moments(v[keep], "clipped_rms")
    return est


def quantiles(values: np.ndarray | Sequence[float], q: Sequence[float] | float) -> np.ndarray:
    """Quantiles of the finite values (linear interpolation); NaN for no values."""
    v = _finite(values)
    q = np.asarray(q, dtype=np.float64)
    if len(v) == 0:
        return np.full(q.shape, np.nan)
    return np.quantile(v, q)


def _quantile_error(sorted_v: np.ndarray, q: float) -> float:
    n = len(sorted_v)
    d = math.sqrt(n * q * (1 - q))
    lo = np.quantile(sorted_v, max(q - d / n, 0.0))
    hi = np.quantile(sorted_v, min(q + d / n, 1.0))
    return 0.5 * float(hi - lo)


def sigma68(values: np.ndarray | Sequence[float]) -> Estimate:
    """Half-width of the central 68.27 % interval, located at the median."""
    v = np.sort(_finite(values))
    n = len(v)
    if n < 2:
        return _nan("sigma68", n)
    q_lo, med, q_hi = np.quantile(v, [_Q_LOW, 0.5, _Q_HIGH])
    width = 0.5 * float(q_hi - q_lo)
    width_err = 0.5 * math.hypot(_quantile_error(v, _Q_LOW), _quantile_error(v, _Q_HIGH))
    return Estimate("sigma68", float(med), _quantile_error(v, 0.5), width, width_err, n)


def gaussian_core(
    values: np.ndarray | Sequence[float],
    *,
    nsigma: float = 2.0,
    bins: int | None = None,
    iterations: int = 2,
) -> Estimate:
    """Gaussian fit to the core, ``mean +- nsigma * width`` (see the module docstring).

    Args:
        values: the residuals.
        nsigma: half-width of the fit range in units of the current width.
        bins: number of histogram bins in the range (default: ``sqrt(n)`` within 10-100).
        iterations: fits, each re-centring the range on the previous result.

    Returns:
        ``mean``/``width`` = fitted mu / sigma with their fit errors; NaN if fewer than
        20 values are in range or the fit fails.
    """
    from scipy import optimize, special

    v = _finite(values)
    start = clipped_rms(v)
    mu, sigma = start.mean, start.width
    if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0):
        return _nan("gauss", len(v))

    def model(edges: np.ndarray) -> Any:
        def f(_x: np.ndarray, a: float, m: float, s: float) -> np.ndarray:
            cdf = special.ndtr((edges - m) / abs(s))
            return a * np.diff(cdf)

        return f

    est = _nan("gauss", len(v))
    for _ in range(max(iterations, 1)):
        lo, hi = mu - nsigma * sigma, mu + nsigma * sigma
        inside = v[(v >= lo) & (v <= hi)]
        n_in = len(inside)
        if n_in < 20:
            return _nan("gauss", n_in)
        nb = bins or int(np.clip(math.sqrt(n_in), 10, 100))
        counts, edges = np.histogram(inside, bins=nb, range=(lo, hi))
        err = np.sqrt(np.maximum(counts, 1.0))
        p0 = (float(len(v)), mu, sigma)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", optimize.OptimizeWarning)
                popt, pcov = optimize.curve_fit(
                    model(edges), edges[:-1], counts, p0=p0, sigma=err, absolute_sigma=True
                )
        except (RuntimeError, ValueError, optimize.OptimizeWarning):
            return _nan("gauss", n_in)
        perr = np.sqrt(np.abs(np.diag(pcov)))
        mu, sigma = float(popt[1]), abs(float(popt[2]))
        if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0):
            return _nan("gauss", n_in)
        est = Estimate("gauss", mu, float(perr[1]), sigma, float(perr[2]), n_in)
    return est


def estimate(values: np.ndarray | Sequence[float], method: Method = "clipped_rms") -> Estimate:
    """Dispatch to one estimator by name (``rms``, ``clipped_rms``, ``gauss``, ``sigma68``)."""
    if method == "rms":
        return rms(values)
    if method == "clipped_rms":
        return clipped_rms(values)
    if method == "gauss":
        return gaussian_core(values)
    if method == "sigma68":
        return sigma68(values)
    raise ValueError(f"unknown resolution method '{method}'; choose from {list(METHODS)}")


@dataclass(frozen=True)
class BinnedResolution:
    """One :class:`Estimate` per bin ``[edges[i], edges[i+1])`` of ``x``.

    Arrays have one entry per bin; bins with fewer than ``min_entries`` values are NaN.
    """

    method: str
    edges: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    mean_err: np.ndarray
    width: np.ndarray
    width_err: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        """Bin centres."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly lists (``None`` for NaN)."""

        def clean(a: np.ndarray) -> list[float | None]:
            return [float(x) if math.isfinite(x) else None for x in a]

        return {
            "method": self.method,
            "edges": [float(e) for e in self.edges],
            "n": [int(k) for k in self.n],
            "mean": clean(self.mean),
            "mean_err": clean(self.mean_err),
            "width": clean(self.width),
            "width_err": clean(self.width_err),
        }


def binned_resolution(
    values: np.ndarray | Sequence[float],
    x: np.ndarray | Sequence[float],
    bins: np.ndarray | Sequence[float],
    method: Method = "clipped_rms",
    *,
    min_entries: int = 10,
) -> BinnedResolution:
    """Resolution of ``values`` in bins of ``x`` (e.g. pT residuals versus eta).

    Args:
        values: residuals, one per entry.
        x: the binning variable, same length.
        bins: bin edges (increasing).
        method: ``rms``, ``clipped_rms`` (default), ``gauss`` or ``sigma68``.
        min_entries: bins with fewer finite values give NaN.
    """
    if method not in METHODS:
        raise ValueError(f"unknown resolution method '{method}'; choose from {list(METHODS)}")
    values = np.asarray(values, np.float64).ravel()
    x = np.asarray(x, np.float64).ravel()
    if values.shape != x.shape:
        raise ValueError(f"values and x differ in length: {len(values)} != {len(x)}")
    edges = np.asarray(bins, np.float64)
    ok = np.isfinite(values) & np.isfinite(x)
    idx = bin_index(x[ok], edges)
    vals = values[ok]
    nb = len(edges) - 1
    out = {k: np.full(nb, np.nan) for k in ("mean", "mean_err", "width", "width_err")}
    counts = np.zeros(nb, np.int64)
    for i in range(nb):  # one estimator call per bin: bins are few
        sel = vals[idx == i]
        counts[i] = len(sel)
        if len(sel) < max(min_entries, 2):
            continue
        e = estimate(sel, method)
        for k, arr in out.items():
            arr[i] = getattr(e, k)
    return BinnedResolution(method, edges, counts, **out)
