"""Data with a known answer for checking the estimators (tests, benchmarks)."""

from __future__ import annotations

import numpy as np


def gaussian_channel(
    m: int, snr: float, n: int = 20_000, seed: int = 0, mix: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(x, y, I)``: x ~ N(0, I_m), y = a.x + Gaussian noise with |a| = 1 and signal-to-
    noise ratio ``snr``, so that I(X; Y) = 0.5 ln(1 + snr) nats.

    With ``mix`` x goes through an invertible non-linear map (random rotation, then
    u + u^3 / 3 per coordinate, then another rotation): I(X; Y) is unchanged, but the
    neighbourhoods a kNN estimator relies on are distorted.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, m))
    a = rng.standard_normal(m)
    a /= np.linalg.norm(a)
    y = x @ a + rng.standard_normal(n) / np.sqrt(snr)
    if mix:
        q1 = np.linalg.qr(rng.standard_normal((m, m)))[0]
        q2 = np.linalg.qr(rng.standard_normal((m, m)))[0]
        u = x @ q1
        x = (u + u**3 / 3) @ q2
    return x, y, float(0.5 * np.log(1 + snr))
