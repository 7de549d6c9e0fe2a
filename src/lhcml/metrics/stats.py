"""Binomial ratios (efficiency, fake rate, ...) with confidence intervals.

A ratio is ``k`` passing out of ``n`` trials. Its interval is a two-sided binomial
confidence interval at ``cl`` (default 68.27 %, "one sigma"):

- ``clopper-pearson`` (default): the exact (conservative) interval from the beta
  distribution: ``[B(a/2; k, n-k+1), B(1-a/2; k+1, n-k)]`` with ``a = 1 - cl``, ``low = 0``
  at ``k = 0`` and ``high = 1`` at ``k = n``. Coverage is at least ``cl`` for every true
  ratio; it is what ROOT's ``TEfficiency`` uses by default.
- ``wilson``: the Wilson score interval, ``(k + z^2/2) / (n + z^2) +- z / (n + z^2) *
  sqrt(k (n - k) / n + z^2 / 4)``; shorter, coverage close to ``cl`` on average.

With ``n = 0`` the ratio and its interval are NaN (undefined), written as ``null`` in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: Two-sided probability content of +-1 sigma of a Gaussian.
ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))

Interval = Literal["clopper-pearson", "wilson"]
INTERVALS: tuple[str, ...] = ("clopper-pearson", "wilson")


def binomial_interval(
    k: np.ndarray | int,
    n: np.ndarray | int,
    *,
    cl: float = ONE_SIGMA,
    method: Interval = "clopper-pearson",
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the binomial confidence interval of ``k / n``.

    Args:
        k: passing counts (``0 <= k <= n``).
        n: trial counts.
        cl: two-sided confidence level.
        method: ``clopper-pearson`` or ``wilson`` (see the module docstring).

    Returns:
        ``(low, high)`` arrays (NaN where ``n == 0``).
    """
    from scipy import special, stats

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any((k < 0) | (k > n)):
        raise ValueError("binomial_interval needs 0 <= k <= n")
    if not 0.0 < cl < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {cl}")
    alpha = 1.0 - cl
    empty = n == 0
    if method == "clopper-pearson":
        # Safe shape parameters where the bound is fixed (0 or 1) to avoid NaN warnings.
        a_lo = np.where(k > 0, k, 1.0)
        b_lo = np.where(empty, 1.0, n - k + 1)
        a_hi = k + 1
        b_hi = np.where(k < n, n - k, 1.0)
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, a_lo, b_lo), 0.0)
        high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, a_hi, b_hi), 1.0)
    elif method == "wilson":
        z = special.ndtri(1 - alpha / 2)
        safe_n = np.where(empty, 1.0, n)
        centre = (k + z * z / 2) / (safe_n + z * z)
        half = z / (safe_n + z * z) * np.sqrt(k * (safe_n - k) / safe_n + z * z / 4)
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    else:
        raise ValueError(f"unknown interval '{method}'; choose from {list(INTERVALS)}")
    low = np.where(empty, np.nan, low)
    high = np.where(empty, np.nan, high)
    return low, high


def bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each ``x`` in ``[edges[i], edges[i+1])``; -1 outside the edges or for NaN."""
    x = np.asarray(x, np.float64)
    edges = np.asarray(edges, np.float64)
    idx = np.searchsorted(edges, x, side="right") - 1
    return np.where(np.isfinite(x) & (idx >= 0) & (idx < len(edges) - 1), idx, -1)


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


@dataclass(frozen=True)
class Ratio:
    """``k`` passing out of ``n``, the ratio ``value = k / n`` and its interval ``[low, high]``."""

    k: int
    n: int
    value: float
    low: float
    high: float

    @classmethod
    def from_counts(
        cls, k: int, n: int, *, cl: float = ONE_SIGMA, method: Interval = "clopper-pearson"
    ) -> Ratio:
        """Build a ratio and its binomial interval from counts."""
        low, high = binomial_interval(k, n, cl=cl, method=method)
        value = k / n if n > 0 else math.nan
        return cls(int(k), int(n), float(value), float(low), float(high))

    @property
    def err_low(self) -> float:
        """Distance from the value down to the lower bound."""
        return self.value - self.low

    @property
    def err_high(self) -> float:
        """Distance from the value up to the upper bound."""
        return self.high - self.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: counts, value and bounds (``None`` when undefined)."""
        value, low, high = _nan_to_none(np.array([self.value, self.low, self.high]))
        return {"k": self.k, "n": self.n, "value": value, "low": low, "high": high}


@dataclass(frozen=True)
class BinnedRatio:
    """Ratios in bins of a variable: ``k[i]`` of ``n[i]`` in ``[edges[i], edges[i+1])``.

    Entries outside the edges are not counted.
    """

    variable: str
    edges: np.ndarray
    k: np.ndarray
    n: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def from_values(
        cls,
        variable: str,
        x: np.ndarray,
        passed: np.ndarray,
        edges: np.ndarray,
        *,
        cl: float = ONE_SIGMA,
        method: Interval = "clopper-pearson",
    ) -> BinnedRatio:
        """Bin ``x`` (NaN ignored) and count ``passed`` per bin."""
        x = np.asarray(x, np.float64)
        passed = np.asarray(passed, bool)
        edges = np.asarray(edges, np.float64)
        idx = bin_index(x, edges)
        inside = idx >= 0
        nb = len(edges) - 1
        n = np.bincount(idx[inside], minlength=nb)
        k = np.bincount(idx[inside & passed], minlength=nb)
        return cls.from_counts(variable, edges, k, n, cl=cl, method=method)

    @classmethod
    def from_counts(
        cls,
        variable: str,
        edges: np.ndarray,
        k: np.ndarray,
        n: np.ndarray,
        *,
        cl: float = ONE_SIGMA,
        method: Interval = "clopper-pearson",
    ) -> BinnedRatio:
        """Build from per-bin counts."""
        k = np.asarray(k, np.int64)
        n = np.asarray(n, np.int64)
        low, high = binomial_interval(k, n, cl=cl, method=method)
        value = np.divide(k, n, out=np.full(len(n), np.nan), where=n > 0)
        return cls(variable, np.asarray(edges, np.float64), k, n, value, low, high)

    @property
    def centers(self) -> np.ndarray:
        """Bin centres."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly lists (``None`` for empty bins)."""
        return {
            "variable": self.variable,
            "edges": [float(e) for e in self.edges],
            "k": [int(v) for v in self.k],
            "n": [int(v) for v in self.n],
            "value": _nan_to_none(self.value),
            "low": _nan_to_none(self.low),
            "high": _nan_to_none(self.high),
        }


def pool_ratios(
    results: Sequence[Any],
    names: Sequence[str],
    *,
    cl: float = ONE_SIGMA,
    method: Interval = "clopper-pearson",
) -> tuple[dict[str, Ratio], dict[str, BinnedRatio]]:
    """Sum per-event counts and recompute rates and intervals.

    Args:
        results: per-event results with a :class:`Ratio` attribute per name in ``names``
            and a ``binned`` dict of :class:`BinnedRatio` (same keys and edges in all).
        names: the ratio attributes to pool (e.g. ``efficiency``, ``fake_rate``).
        cl, method: binomial interval settings of the pooled ratios.

    Returns:
        ``(ratios by name, binned ratios by key)``.

    Raises:
        ValueError: no results, or binned keys / edges differ between results.
    """
    if not results:
        raise ValueError("nothing to combine")
    first = results[0]
    opts: dict[str, Any] = {"cl": cl, "method": method}
    ratios = {
        name: Ratio.from_counts(
            sum(getattr(r, name).k for r in results),
            sum(getattr(r, name).n for r in results),
            **opts,
        )
        for name in names
    }
    binned = {}
    for key, b in first.binned.items():
        for r in results[1:]:
            if r.binned.keys() != first.binned.keys():
                raise ValueError("cannot combine results with different binned variables")
            if not np.array_equal(r.binned[key].edges, b.edges):
                raise ValueError(f"cannot combine '{key}': different bin edges")
        k = np.sum([r.binned[key].k for r in results], axis=0)
        n = np.sum([r.binned[key].n for r in results], axis=0)
        binned[key] = BinnedRatio.from_counts(b.variable, b.edges, k, n, **opts)
    return ratios, binned
