"""Vectorised helix fit: Karimäki circle fit in x-y, straight line in s-z.

The baseline fitter: no material, no iteration over hits, one pass of numpy over a
padded batch of candidates (``(n, m)`` arrays with a mask), ~1-2 us per track.

**Circle** (V. Karimäki, NIM A 305 (1991) 187): the non-iterative weighted fit of
``(rho, phi, d)`` - curvature, direction at the point of closest approach to the origin
and signed distance - from weighted moments of ``x, y, r^2``. It has no singularity for
straight tracks (unlike centre-radius fits such as Kasa's) and gives the perigee directly
because the origin is the beam line. Weights are ``1 / sigma^2`` of the hit across the
track in x-y: the r-phi resolution, plus, in a second pass, the radial resolution of
endcap strips projected across the track (``sigma_r |sin alpha|``, alpha the crossing
angle from the first pass).

**Line**: ``z = z0 + s cot(theta)``, ``s`` the transverse arc length from the perigee
along the fitted circle, weighted least squares with ``sigma_z`` (barrel: the z
resolution; endcaps: the radial resolution times ``|cot theta|``, from a first pass).

The result follows :mod:`lhcml.fitting.targets` (``qopt, theta, phi, d0, z0``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from lhcml.fitting import geometry
from lhcml.fitting.targets import BFIELD, K_FIELD, wrap_angle


def _wsum(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sum(w * v, axis=1)


def karimaki_circle(
    x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Karimäki circle fit of padded point sets.

    Args:
        x, y: (n, m) coordinates [mm]; padded entries are ignored through ``w``.
        w: (n, m) weights (0 for padding).

    Returns:
        ``(kappa, phi, d0)``: the signed curvature in the :mod:`~lhcml.fitting.targets`
        convention (``dphi/ds``; negative for positive particles in +z field) [1/mm], the
        direction at the point of closest approach to the origin (the direction from
        the origin towards the hits' centroid is chosen) and the signed d0 [mm]. NaN
        where fewer than 3 points have weight.
    """
    wsum = w.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        wn = w / wsum
        r2 = x * x + y * y
        sx, sy, sr = _wsum(wn, x), _wsum(wn, y), _wsum(wn, r2)
        cxx = _wsum(wn, x * x) - sx * sx
        cxy = _wsum(wn, x * y) - sx * sy
        cyy = _wsum(wn, y * y) - sy * sy
        cxr = _wsum(wn, x * r2) - sx * sr
        cyr = _wsum(wn, y * r2) - sy * sr
        crr = _wsum(wn, r2 * r2) - sr * sr
        q1 = crr * cxy - cxr * cyr
        q2 = crr * (cxx - cyy) - cxr * cxr + cyr * cyr
        phi = 0.5 * np.arctan2(2.0 * q1, q2)
        sphi, cphi = np.sin(phi), np.cos(phi)
        kap = (sphi * cxr - cphi * cyr) / crr
        delta = -kap * sr + sphi * sx - cphi * sy
        root = np.sqrt(np.maximum(1.0 - 4.0 * delta * kap, 0.0))
        rho = 2.0 * kap / root
        d = 2.0 * delta / (1.0 + root)
    # Karimäki's phi is defined modulo pi: point it from the origin towards the hits.
    flip = (cphi * sx + sphi * sy) < 0
    phi = np.where(flip, phi + np.pi, phi)
    rho = np.where(flip, -rho, rho)
    d = np.where(flip, -d, d)
    npts = (w > 0).sum(axis=1)
    bad = npts < 3
    # Karimäki's rho and d both have the opposite sign of the perigee convention's
    # kappa and d0 (checked against analytic helices in the tests).
    kappa = np.where(bad, np.nan, -rho)
    return kappa, np.where(bad, np.nan, wrap_angle(phi)), np.where(bad, np.nan, -d)


def arc_length(
    x: np.ndarray, y: np.ndarray, kappa: np.ndarray, phi: np.ndarray, d0: np.ndarray
) -> np.ndarray:
    """Transverse arc length from the perigee to the points' projections on the circle.

    Args:
        x, y: (n, m) points [mm].
        kappa, phi, d0: (n,) circle in the perigee convention.

    Returns:
        (n, m) signed arc length [mm] (less than half a turn either way).
    """
    k = kappa[:, None]
    px = (-d0 * np.sin(phi))[:, None]
    py = (d0 * np.cos(phi))[:, None]
    ux, uy = np.cos(phi)[:, None], np.sin(phi)[:, None]
    dx, dy = x - px, y - py
    along = dx * ux + dy * uy
    chord = np.hypot(dx, dy)
    a = np.clip(0.5 * k * chord, -1.0, 1.0)
    # s = 2 asin(k c / 2) / k = c * asin(a) / a, stable as a -> 0.
    small = np.abs(a) < 1e-4
    safe = np.where(small, 1.0, a)
    ratio = np.where(small, 1.0 + a * a / 6.0, np.arcsin(safe) / safe)
    return np.sign(along) * chord * ratio


def _line_fit(s: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares ``z = z0 + t s``: returns ``(z0, t)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sw = w.sum(axis=1)
        ms = _wsum(w, s) / sw
        mz = _wsum(w, z) / sw
        vss = _wsum(w, (s - ms[:, None]) ** 2)
        vsz = _wsum(w, (s - ms[:, None]) * (z - mz[:, None]))
        t = vsz / vss
    return mz - t * ms, t


def helix_fit(
    xyz: np.ndarray,
    mask: np.ndarray,
    volume: np.ndarray | None = None,
    *,
    bfield: float = BFIELD,
    sigma: np.ndarray | None = None,
    frames: np.ndarray | None = None,
) -> np.ndarray:
    """Fit helices to padded candidates.

    Args:
        xyz: (n, m, 3) hit positions [mm].
        mask: (n, m) bool, True for real hits.
        volume: (n, m) volume ids (resolutions and barrel/endcap); None: all hits are
            treated as barrel pixel hits of equal weight.
        bfield: field along z [T].
        sigma: (n, m, 2) optional per-hit ``(sigma_u, sigma_v)`` instead of the
            volume's resolution.
        frames: (n, m) azimuth of each endcap hit's coarse measurement axis
            (:func:`lhcml.fitting.geometry.measurement_frames`); default radial.

    Returns:
        (n, 5) ``qopt, theta, phi, d0, z0`` (see :mod:`lhcml.fitting.targets`); NaN rows
        for candidates with fewer than 3 hits.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    if sigma is None:
        if volume is None:
            sigma = np.full((*mask.shape, 2), 0.0144)
            barrel = np.ones(mask.shape, dtype=bool)
        else:
            sigma = geometry.hit_resolution(volume)
            barrel = geometry.is_barrel(volume)
    else:
        barrel = np.ones(mask.shape, dtype=bool) if volume is None else geometry.is_barrel(volume)
    su, sv = sigma[..., 0], sigma[..., 1]
    w = np.where(mask, 1.0 / su**2, 0.0)
    kappa, phi, d0 = karimaki_circle(x, y, w)
    # Second pass: endcap radial errors projected across the track.
    with np.errstate(invalid="ignore", divide="ignore"):
        s = arc_length(x, y, kappa, phi, d0)
        # Direction at each hit relative to the radial direction.
        phit = phi[:, None] + kappa[:, None] * s
        axis = np.arctan2(y, x) if frames is None else frames
        sin_a = np.sin(phit - axis)
    radial = np.where(barrel, 0.0, sv * np.abs(np.nan_to_num(sin_a)))
    w2 = np.where(mask, 1.0 / (su**2 + radial**2), 0.0)
    kappa, phi, d0 = karimaki_circle(x, y, w2)
    s = arc_length(x, y, kappa, phi, d0)
    # Line: barrel z error sigma_v; endcap z exact but s uncertain by sigma_r.
    wz = np.where(mask, 1.0 / sv**2, 0.0)  # first pass: endcap s error ~ sigma_r
    z0, t = _line_fit(s, z, np.where(mask & np.isfinite(s), wz, 0.0))
    wz2 = np.where(barrel, 1.0 / sv**2, 1.0 / (su**2 + (sv * t[:, None]) ** 2))
    z0, t = _line_fit(s, z, np.where(mask & np.isfinite(s), wz2, 0.0))
    theta = np.arctan2(1.0, t)
    qopt = -kappa / (K_FIELD * bfield)
    return np.column_stack([qopt, theta, phi, d0, z0])


# --- compiled version on flat hit arrays (the fast path of the TrackFormer features) ---


@nb.njit(cache=True)
def _karimaki_one(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    sw = 0.0
    for i in range(len(w)):
        sw += w[i]
    sx = sy = sr = sxx = sxy = syy = sxr = syr = srr = 0.0
    for i in range(len(w)):
        wi = w[i] / sw
        r2 = x[i] * x[i] + y[i] * y[i]
        sx += wi * x[i]
        sy += wi * y[i]
        sr += wi * r2
        sxx += wi * x[i] * x[i]
        sxy += wi * x[i] * y[i]
        syy += wi * y[i] * y[i]
        sxr += wi * x[i] * r2
        syr += wi * y[i] * r2
        srr += wi * r2 * r2
    cxx, cxy, cyy = sxx - sx * sx, sxy - sx * sy, syy - sy * sy
    cxr, cyr, crr = sxr - sx * sr, syr - sy * sr, srr - sr * sr
    q1 = crr * cxy - cxr * cyr
    q2 = crr * (cxx - cyy) - cxr * cxr + cyr * cyr
    phi = 0.5 * math.atan2(2.0 * q1, q2)
    sphi, cphi = math.sin(phi), math.cos(phi)
    kap = (sphi * cxr - cphi * cyr) / crr
    delta = -kap * sr + sphi * sx - cphi * sy
    root = math.sqrt(max(1.0 - 4.0 * delta * kap, 0.0))
    rho = 2.0 * kap / root
    d = 2.0 * delta / (1.0 + root)
    if cphi * sx + sphi * sy < 0:
        phi += math.pi
        rho, d = -rho, -d
    phi = math.pi - ((math.pi - phi) % (2.0 * math.pi))
    return -rho, phi, -d


@nb.njit(cache=True)
def _arc_one(x: float, y: float, kappa: float, phi: float, d0: float) -> float:
    dx = x + d0 * math.sin(phi)
    dy = y - d0 * math.cos(phi)
    along = dx * math.cos(phi) + dy * math.sin(phi)
    chord = math.sqrt(dx * dx + dy * dy)
    a = min(max(0.5 * kappa * chord, -1.0), 1.0)
    ratio = 1.0 + a * a / 6.0 if abs(a) < 1e-4 else math.asin(a) / a
    return (1.0 if along >= 0 else -1.0) * chord * ratio


@nb.njit(cache=True)
def _line_one(s: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    sw = ms = mz = 0.0
    for i in range(len(w)):
        sw += w[i]
        ms += w[i] * s[i]
        mz += w[i] * z[i]
    ms /= sw
    mz /= sw
    vss = vsz = 0.0
    for i in range(len(w)):
        vss += w[i] * (s[i] - ms) ** 2
        vsz += w[i] * (s[i] - ms) * (z[i] - mz)
    t = vsz / vss
    return mz - t * ms, t


@nb.njit(cache=True)
def _fit_one(
    xyz: np.ndarray,
    a: int,
    b: int,
    sig: np.ndarray,
    barrel: np.ndarray,
    axis: np.ndarray,
    kb: float,
    params: np.ndarray,
    res: np.ndarray,
) -> None:
    """Helix fit of the hits ``a:b``: ``params`` (5,) (NaN below 3 hits) and the hits'
    residuals in ``res[a:b]``."""
    m = b - a
    params[:] = math.nan
    if m < 3:
        return
    x = xyz[a:b, 0]
    y = xyz[a:b, 1]
    z = xyz[a:b, 2]
    w = np.empty(m)
    s = np.empty(m)
    for i in range(m):
        w[i] = 1.0 / sig[a + i, 0] ** 2
    kappa, phi, d0 = _karimaki_one(x, y, w)
    for i in range(m):
        si = _arc_one(x[i], y[i], kappa, phi, d0)
        sa = math.sin(phi + kappa * si - axis[a + i]) if math.isfinite(si) else 0.0
        rad = 0.0 if barrel[a + i] else sig[a + i, 1] * abs(sa)
        w[i] = 1.0 / (sig[a + i, 0] ** 2 + rad * rad)
    kappa, phi, d0 = _karimaki_one(x, y, w)
    for i in range(m):
        s[i] = _arc_one(x[i], y[i], kappa, phi, d0)
        w[i] = 1.0 / sig[a + i, 1] ** 2
    z0, tl = _line_one(s, z, w)
    for i in range(m):
        if not barrel[a + i]:
            w[i] = 1.0 / (sig[a + i, 0] ** 2 + (sig[a + i, 1] * tl) ** 2)
    z0, tl = _line_one(s, z, w)
    params[0] = -kappa / kb
    params[1] = math.atan2(1.0, tl)
    params[2] = phi
    params[3] = d0
    params[4] = z0
    # Residuals to the fitted helix: across the track in x-y, and in z.
    for i in range(m):
        half = 0.5 * kappa * s[i]
        sinc = 1.0 - half * half / 6.0 if abs(half) < 1e-4 else math.sin(half) / half
        chord = s[i] * sinc
        hx = -d0 * math.sin(phi) + chord * math.cos(phi + half)
        hy = d0 * math.cos(phi) + chord * math.sin(phi + half)
        ph = phi + kappa * s[i]
        res[a + i, 0] = -(x[i] - hx) * math.sin(ph) + (y[i] - hy) * math.cos(ph)
        res[a + i, 1] = z[i] - (z0 + s[i] * tl)


@nb.njit(cache=True)
def _fit_flat(
    xyz: np.ndarray,
    offsets: np.ndarray,
    sig: np.ndarray,
    barrel: np.ndarray,
    axis: np.ndarray,
    kb: float,
    params: np.ndarray,
    res: np.ndarray,
) -> None:
    for t in range(len(offsets) - 1):
        _fit_one(xyz, offsets[t], offsets[t + 1], sig, barrel, axis, kb, params[t], res)


def helix_fit_flat(
    xyz: np.ndarray,
    volume: np.ndarray,
    offsets: np.ndarray,
    *,
    frames: np.ndarray | None = None,
    bfield: float = BFIELD,
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :func:`helix_fit` on flat hit arrays, with the hits' residuals.

    Args:
        xyz: (N, 3) hits, candidate after candidate.
        volume: (N,) volume ids.
        offsets: (n + 1,) candidate boundaries.
        frames: (N,) azimuth of each endcap hit's coarse axis (default radial).
        bfield: field [T].

    Returns:
        ``(params, residuals)``: (n, 5) as :func:`helix_fit` and (N, 2) residuals of each
        hit to its fitted helix: across the track in x-y and in z [mm].
    """
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    volume = np.asarray(volume)
    axis = np.arctan2(xyz[:, 1], xyz[:, 0]) if frames is None else np.asarray(frames, np.float64)
    n = len(offsets) - 1
    params = np.empty((n, 5))
    res = np.zeros((len(xyz), 2))
    _fit_flat(
        xyz,
        np.asarray(offsets, np.int64),
        geometry.hit_resolution(volume),
        geometry.is_barrel(volume),
        np.ascontiguousarray(axis),
        K_FIELD * bfield,
        params,
        res,
    )
    return params, res
