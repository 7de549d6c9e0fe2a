"""lhcml's Kalman filter: helix propagation in a solenoid, multiple scattering as process noise.

A compact, compiled (numba) track fit of hit sequences - no ACTS, no detector geometry
beyond :mod:`lhcml.fitting.geometry` - meant as the in-house baseline between the helix
fit and the ACTS Kalman filter.

**Measurement model.** Each hit defines its own surface through the measured point: a
cylinder ``r = r_hit`` in the barrel, a plane ``z = z_hit`` in the endcaps (the Generic
detector's endcap modules sit at fixed z; barrel modules are nearly tangent to the
cylinder). The state on a surface is ``(l0, l1, phi, theta, q/p)`` with local
coordinates measured from the hit: cylinder ``(r_hit * dPhi, dz)``, plane ``(d_rphi,
d_r)``. The measurement is then always ``(0, 0)`` with covariance ``diag(sigma_u^2,
sigma_v^2)`` (:func:`lhcml.fitting.geometry.hit_resolution`), so ``H = [I_2 0]``.

**Propagation.** Exact helix in a uniform field along z between surfaces (analytic for
planes, Newton iterations for cylinders); the transport Jacobian by forward finite
differences of the propagation (five extra propagations per step).

**Material.** With ``multiple_scattering`` (default), at each hit the Highland angle of
the layer (sensor + support, :data:`~lhcml.fitting.geometry.MATERIAL_X0`, at the
crossing angle, split over the track's hits on that layer) is added as process noise
on ``phi`` (``/ sin^2 theta``) and ``theta``; passive cylinders (the beam pipe, the pixel
support tube) crossed between hits add noise where they are crossed. No energy loss.
``multiple_scattering=False`` gives the material-free filter.

**Order.** The filter runs outside-in: it starts at the outermost hit from the seed
(:func:`lhcml.fitting.helix.helix_fit` by default) with a loose covariance, ends at the
innermost hit, which holds the information of all hits, and is carried to the perigee
(through the beam pipe). No smoother is needed for the perigee parameters.

Output: perigee parameters ``qopt, theta, phi, d0, z0`` (:mod:`lhcml.fitting.targets`),
their covariance, chi2 and degrees of freedom per candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from lhcml.fitting import geometry
from lhcml.fitting.targets import BFIELD, K_FIELD

#: Passive cylinders (radius [mm], thickness in X0): beam pipe, pixel support tube.
PASSIVE: tuple[tuple[float, float], ...] = (
    (geometry.BEAMPIPE_R, geometry.BEAMPIPE_X0),
    (200.0, 1.8 / 352.8),
)

_TWO_PI = 2.0 * math.pi


@nb.njit(cache=True, inline="always")
def _wrap(a: float) -> float:
    return a - _TWO_PI * math.floor((a + math.pi) / _TWO_PI)


@nb.njit(cache=True)
def _to_global(st: np.ndarray, surf: np.ndarray) -> tuple[float, float, float]:
    # surf: kind (0 cylinder, 1 plane), radius, x, y, z of the reference point, and its
    # azimuth (cylinder) or the azimuth of the coarse measurement axis v (plane).
    if surf[0] == 0.0:
        big = surf[5] + st[0] / surf[1]
        return surf[1] * math.cos(big), surf[1] * math.sin(big), surf[4] + st[1]
    sp, cp = math.sin(surf[5]), math.cos(surf[5])
    return surf[2] - sp * st[0] + cp * st[1], surf[3] + cp * st[0] + sp * st[1], surf[4]


@nb.njit(cache=True)
def _advance(
    x: float, y: float, z: float, phi: float, kappa: float, cot: float, s: float
) -> tuple[float, float, float, float]:
    half = 0.5 * kappa * s
    sinc = 1.0 - half * half / 6.0 if abs(half) < 1e-4 else math.sin(half) / half
    chord = s * sinc
    mid = phi + half
    return x + chord * math.cos(mid), y + chord * math.sin(mid), z + s * cot, phi + kappa * s


@nb.njit(cache=True)
def _path(
    x: float,
    y: float,
    z: float,
    phi: float,
    kappa: float,
    cot: float,
    surf: np.ndarray,
    direction: float,
) -> float:
    """Signed transverse path to the surface; NaN if none.

    For cylinders: the nearest crossing with the sign of ``direction`` (+1 along the
    momentum, -1 against it), or the nearest either way for ``direction = 0``.
    """
    if surf[0] == 1.0:
        if abs(cot) < 1e-12:
            return math.nan
        return (surf[4] - z) / cot
    radius = surf[1]
    cphi, sphi = math.cos(phi), math.sin(phi)
    b = x * cphi + y * sphi
    c = x * x + y * y - radius * radius
    disc = b * b - c
    if disc >= 0.0:
        root = math.sqrt(disc)
        s1, s2 = -b + root, -b - root
        if direction != 0.0 and s1 * direction < 0.0:
            s = s2
        elif direction != 0.0 and s2 * direction < 0.0:
            s = s1
        else:
            s = s1 if abs(s1) < abs(s2) else s2
    else:
        s = -b
    for _ in range(20):
        nx, ny, _nz, nphi = _advance(x, y, z, phi, kappa, 0.0, s)
        g = nx * nx + ny * ny - radius * radius
        dg = 2.0 * (nx * math.cos(nphi) + ny * math.sin(nphi))
        if dg == 0.0:
            return math.nan
        step = g / dg
        s -= step
        if abs(step) < 1e-9:
            break
    nx, ny, _nz, _ = _advance(x, y, z, phi, kappa, 0.0, s)
    if abs(math.sqrt(nx * nx + ny * ny) - radius) > 1e-5:
        return math.nan
    if direction != 0.0 and s * direction < 0.0:
        return math.nan
    return s


@nb.njit(cache=True)
def _to_local(x: float, y: float, z: float, surf: np.ndarray, out: np.ndarray) -> None:
    """Local coordinates of a global point on ``surf`` (cylinder: r*dphi, dz; plane: u, v)."""
    if surf[0] == 0.0:
        out[0] = surf[1] * _wrap(math.atan2(y, x) - surf[5])
        out[1] = z - surf[4]
    else:
        dx, dy = x - surf[2], y - surf[3]
        sp, cp = math.sin(surf[5]), math.cos(surf[5])
        out[0] = -sp * dx + cp * dy
        out[1] = cp * dx + sp * dy


@nb.njit(cache=True)
def _transport(
    st: np.ndarray, src: np.ndarray, dst: np.ndarray, bfield: float, out: np.ndarray
) -> bool:
    """State on ``src`` -> state on ``dst`` (written into ``out``); False on failure."""
    x, y, z = _to_global(st, src)
    phi, theta, qop = st[2], st[3], st[4]
    sth = math.sin(theta)
    if sth <= 1e-9:
        return False
    kappa = -K_FIELD * bfield * qop / sth
    cot = math.cos(theta) / sth
    s = _path(x, y, z, phi, kappa, cot, dst, 0.0)
    if not math.isfinite(s):
        return False
    nx, ny, nz, nphi = _advance(x, y, z, phi, kappa, cot, s)
    _to_local(nx, ny, nz, dst, out)
    out[2] = _wrap(nphi)
    out[3] = theta
    out[4] = qop
    return True


_STEPS = np.array([1e-4, 1e-4, 1e-7, 1e-7, 0.0])


@nb.njit(cache=True)
def _transport_jac(
    st: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    bfield: float,
    out: np.ndarray,
    jac: np.ndarray,
    work: np.ndarray,
    tmp: np.ndarray,
) -> bool:
    if not _transport(st, src, dst, bfield, out):
        return False
    for j in range(5):
        h = _nudge(st, j, work)
        if not _transport(work, src, dst, bfield, tmp):
            return False
        _difference_column(jac, j, tmp, out, h)
    return True


@nb.njit(cache=True)
def _nudge(st: np.ndarray, j: int, work: np.ndarray) -> float:
    """``work`` = ``st`` with parameter ``j`` shifted by its finite-difference step ``h``;
    returns ``h``."""
    h = _STEPS[j] if j < 4 else 1e-7 * max(abs(st[4]), 1e-3)
    for i in range(5):
        work[i] = st[i]
    work[j] += h
    return h


@nb.njit(cache=True)
def _difference_column(
    jac: np.ndarray, j: int, shifted: np.ndarray, out: np.ndarray, h: float
) -> None:
    """Column ``j`` of a Jacobian by forward difference (phi difference wrapped)."""
    for i in range(5):
        d = shifted[i] - out[i]
        if i == 2:
            d = _wrap(d)
        jac[i, j] = d / h


@nb.njit(cache=True)
def _highland(qop: float, x0: float, mass: float) -> float:
    p = 1.0 / max(abs(qop), 1e-6)
    beta = p / math.sqrt(p * p + mass * mass)
    x0 = max(x0, 1e-12)
    return 0.0136 / (beta * p) * math.sqrt(x0) * (1.0 + 0.038 * math.log(x0 / (beta * beta)))


@nb.njit(cache=True)
def _add_scattering(
    cov: np.ndarray, st: np.ndarray, surf: np.ndarray, x0: float, mass: float
) -> None:
    if x0 <= 0.0:
        return
    theta, phi = st[3], st[2]
    sth = math.sin(theta)
    if surf[0] == 0.0:
        x, y, _z = _to_global(st, surf)
        cos_inc = abs(sth * math.cos(phi - math.atan2(y, x)))
    else:
        cos_inc = abs(math.cos(theta))
    path = x0 / max(cos_inc, 1e-3)
    t0 = _highland(st[4] * 1.0, path, mass)
    cov[2, 2] += t0 * t0 / max(sth * sth, 1e-12)
    cov[3, 3] += t0 * t0


@nb.njit(cache=True)
def _perigee(st: np.ndarray, surf: np.ndarray, bfield: float, out: np.ndarray) -> bool:
    """Perigee ``qopt, theta, phi, d0, z0`` of the state on ``surf``."""
    x, y, z = _to_global(st, surf)
    phi, theta, qop = st[2], st[3], st[4]
    sth = math.sin(theta)
    if sth <= 1e-9 or qop == 0.0:
        return False
    qopt = qop / sth
    kappa = -K_FIELD * bfield * qopt
    cx = x - math.sin(phi) / kappa
    cy = y + math.cos(phi) / kappa
    cn = math.hypot(cx, cy)
    sg = 1.0 if kappa > 0 else -1.0
    psi = math.atan2(-sg * cx / cn, sg * cy / cn)
    px = cx + math.sin(psi) / kappa
    py = cy - math.cos(psi) / kappa
    d0 = -px * math.sin(psi) + py * math.cos(psi)
    s = _wrap(phi - psi) / kappa
    out[0] = qopt
    out[1] = theta
    out[2] = _wrap(psi)
    out[3] = d0
    out[4] = z - s * math.cos(theta) / sth
    return True


@nb.njit(cache=True)
def _perigee_jac(
    st: np.ndarray, surf: np.ndarray, bfield: float, out: np.ndarray, jac: np.ndarray
) -> bool:
    if not _perigee(st, surf, bfield, out):
        return False
    work = np.empty(5)
    tmp = np.empty(5)
    for j in range(5):
        h = _nudge(st, j, work)
        if not _perigee(work, surf, bfield, tmp):
            return False
        _difference_column(jac, j, tmp, out, h)
    return True


@nb.njit(cache=True)
def _seed_state(seed: np.ndarray, surf: np.ndarray, bfield: float, out: np.ndarray) -> bool:
    """Carry perigee parameters to the state on ``surf``."""
    qopt, theta, phi, d0, z0 = seed[0], seed[1], seed[2], seed[3], seed[4]
    sth = math.sin(theta)
    x, y = -d0 * math.sin(phi), d0 * math.cos(phi)
    kappa = -K_FIELD * bfield * qopt
    cot = math.cos(theta) / sth
    s = _path(x, y, z0, phi, kappa, cot, surf, 1.0)
    if not math.isfinite(s):
        return False
    nx, ny, nz, nphi = _advance(x, y, z0, phi, kappa, cot, s)
    _to_local(nx, ny, nz, surf, out)
    out[2] = _wrap(nphi)
    out[3] = theta
    out[4] = qopt * sth
    return True


@nb.njit(cache=True)
def _crossing_surface(
    st: np.ndarray, src: np.ndarray, radius: float, bfield: float, surf: np.ndarray
) -> bool:
    """A passive cylinder ``r = radius`` with its reference at the crossing point."""
    x, y, z = _to_global(st, src)
    phi, theta, qop = st[2], st[3], st[4]
    sth = math.sin(theta)
    kappa = -K_FIELD * bfield * qop / sth
    cot = math.cos(theta) / sth
    surf[0] = 0.0
    surf[1] = radius
    s = _path(x, y, z, phi, kappa, cot, surf, 0.0)
    if not math.isfinite(s):
        return False
    nx, ny, nz, _ = _advance(x, y, z, phi, kappa, cot, s)
    surf[2], surf[3], surf[4], surf[5] = nx, ny, nz, math.atan2(ny, nx)
    return True


@nb.njit(cache=True)
def _step(
    st: np.ndarray,
    cov: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    bfield: float,
    mass: float,
    passive: np.ndarray,
    ms: bool,
    buf: np.ndarray,
    jac: np.ndarray,
    psurf: np.ndarray,
) -> bool:
    """Transport state and covariance from ``src`` to ``dst`` via passive crossings."""
    r_src = math.hypot(src[2], src[3])
    r_dst = math.hypot(dst[2], dst[3]) if dst[0] >= 0 else 0.0
    cur = src.copy()
    lo, hi = min(r_src, r_dst), max(r_src, r_dst)
    # Passive cylinders in the order they are crossed (radius decreasing when going in).
    n_p = passive.shape[0]
    for ii in range(n_p):
        i = ii if r_dst > r_src else n_p - 1 - ii
        radius = passive[i, 0]
        if not (ms and lo < radius < hi):
            continue
        if not _crossing_surface(st, cur, radius, bfield, psurf):
            return False
        if not _transport_jac(st, cur, psurf, bfield, buf[0], jac, buf[1], buf[2]):
            return False
        st[:] = buf[0]
        cov[:, :] = jac @ cov @ jac.T
        _add_scattering(cov, st, psurf, passive[i, 1], mass)
        cur[:] = psurf
    if dst[0] < 0:  # perigee: stop at the last passive crossing
        src[:] = cur
        return True
    if not _transport_jac(st, cur, dst, bfield, buf[0], jac, buf[1], buf[2]):
        return False
    st[:] = buf[0]
    cov[:, :] = jac @ cov @ jac.T
    return True


@nb.njit(cache=True)
def _fit_all(
    surfs: np.ndarray,
    sigma: np.ndarray,
    x0: np.ndarray,
    offsets: np.ndarray,
    seeds: np.ndarray,
    prior: np.ndarray,
    bfield: float,
    mass: float,
    passive: np.ndarray,
    ms: bool,
    params: np.ndarray,
    covs: np.ndarray,
    chi2: np.ndarray,
    ndf: np.ndarray,
) -> None:
    n = offsets.shape[0] - 1
    st = np.empty(5)
    cov = np.empty((5, 5))
    buf = np.empty((3, 5))
    jac = np.empty((5, 5))
    psurf = np.empty(6)
    pj = np.empty((5, 5))
    out = np.empty(5)
    cur = np.empty(6)
    for t in range(n):
        a, b = offsets[t], offsets[t + 1]
        params[t, :] = math.nan
        covs[t, :, :] = math.nan
        chi2[t] = math.nan
        ndf[t] = 2 * (b - a) - 5
        if b - a < 3 or not np.all(np.isfinite(seeds[t])):
            continue
        if not _seed_state(seeds[t], surfs[b - 1], bfield, st):
            continue
        cov[:, :] = 0.0
        for i in range(4):
            cov[i, i] = prior[i] * prior[i]
        sq = prior[4] * abs(st[4]) + 1e-3
        cov[4, 4] = sq * sq
        c2 = 0.0
        ok = True
        for k in range(b - 1, a - 1, -1):
            if k < b - 1:
                cur[:] = surfs[k + 1]
                if not _step(st, cov, cur, surfs[k], bfield, mass, passive, ms, buf, jac, psurf):
                    ok = False
                    break
            # Kalman update with the measurement (0, 0) on this surface.
            v0, v1 = sigma[k, 0] ** 2, sigma[k, 1] ** 2
            s00, s01, s11 = cov[0, 0] + v0, cov[0, 1], cov[1, 1] + v1
            det = s00 * s11 - s01 * s01
            if det <= 0.0:
                ok = False
                break
            i00, i01, i11 = s11 / det, -s01 / det, s00 / det
            r0, r1 = -st[0], -st[1]
            c2 += r0 * (i00 * r0 + i01 * r1) + r1 * (i01 * r0 + i11 * r1)
            gain = np.empty((5, 2))
            for i in range(5):
                gain[i, 0] = cov[i, 0] * i00 + cov[i, 1] * i01
                gain[i, 1] = cov[i, 0] * i01 + cov[i, 1] * i11
            for i in range(5):
                st[i] += gain[i, 0] * r0 + gain[i, 1] * r1
            # Joseph-free form, symmetrised.
            upd = cov.copy()
            for i in range(5):
                for j in range(5):
                    upd[i, j] = cov[i, j] - gain[i, 0] * cov[0, j] - gain[i, 1] * cov[1, j]
            for i in range(5):
                for j in range(i, 5):
                    m = 0.5 * (upd[i, j] + upd[j, i])
                    cov[i, j] = m
                    cov[j, i] = m
            st[2] = _wrap(st[2])
            if ms:
                _add_scattering(cov, st, surfs[k], x0[k], mass)
        if not ok:
            continue
        # Through the beam pipe to the perigee.
        cur[:] = surfs[a]
        marker = np.full(6, -1.0)
        if not _step(st, cov, cur, marker, bfield, mass, passive, ms, buf, jac, psurf):
            continue
        if not _perigee_jac(st, cur, bfield, out, pj):
            continue
        params[t, :] = out
        covs[t, :, :] = pj @ cov @ pj.T
        chi2[t] = c2


@dataclass
class KalmanResult:
    """Perigee parameters from :func:`kalman_fit`.

    Attributes:
        params: (n, 5) ``qopt, theta, phi, d0, z0``; NaN where the fit failed.
        cov: (n, 5, 5) their covariance.
        chi2, ndf: fit quality (``ndf = 2 n_hits - 5``).
    """

    params: np.ndarray
    cov: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray

    @property
    def sigma(self) -> np.ndarray:
        """(n, 5) standard deviations of the parameters."""
        return np.sqrt(np.diagonal(self.cov, axis1=1, axis2=2))


def hit_surfaces(
    xyz: np.ndarray, volume: np.ndarray, frames: np.ndarray | None = None
) -> np.ndarray:
    """(N, 6) surface of each hit: kind (0 cylinder, 1 plane), radius, x, y, z, angle.

    The angle is the hit's azimuth Phi on cylinders; on planes the azimuth of the coarse
    measurement axis (``frames``, :func:`lhcml.fitting.geometry.measurement_frames`;
    default: radial at the hit).
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    barrel = geometry.is_barrel(volume)
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    angle = phi if frames is None else np.where(barrel, phi, frames)
    return np.column_stack([np.where(barrel, 0.0, 1.0), r, xyz[:, 0], xyz[:, 1], xyz[:, 2], angle])


def layer_material(volume: np.ndarray, layer: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-hit thickness in X0: the layer's material split over the candidate's hits on it."""
    volume = np.asarray(volume, dtype=np.int64)
    layer = np.asarray(layer, dtype=np.int64)
    cand = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    key = (cand << 24) | (volume << 12) | layer
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    return geometry.material_x0(volume) / counts[inv]


def kalman_fit(
    xyz: np.ndarray,
    volume: np.ndarray,
    layer: np.ndarray,
    offsets: np.ndarray,
    seeds: np.ndarray | None = None,
    *,
    bfield: float = BFIELD,
    multiple_scattering: bool = True,
    mass: float = geometry.PION_MASS,
    prior: tuple[float, float, float, float, float] = (1.0, 10.0, 0.05, 0.05, 0.3),
    iterations: int = 1,
    frames: np.ndarray | None = None,
) -> KalmanResult:
    """Fit candidates given as hit arrays with offsets (hits ordered inside out).

    Args:
        xyz: (N, 3) hit positions [mm], candidate after candidate, each ordered from the
            innermost to the outermost hit.
        volume, layer: (N,) volume and layer ids (resolution, barrel/endcap, material).
        offsets: (n + 1,) start of each candidate in the hit arrays.
        seeds: (n, 5) perigee seeds; default: the helix fit.
        bfield: field [T].
        multiple_scattering: add scattering process noise (False: material-free).
        mass: particle hypothesis for the scattering angle [GeV].
        prior: initial sigmas at the outermost hit: l0, l1 [mm], phi, theta [rad] and the
            relative q/p sigma.
        iterations: refits, each seeded by the previous result.
        frames: (N,) azimuth of each endcap hit's coarse axis
            (:func:`lhcml.fitting.geometry.measurement_frames`); default radial.

    Returns:
        A :class:`KalmanResult`.
    """
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    volume = np.asarray(volume)
    if seeds is None:
        from lhcml.fitting.helix import helix_fit

        padded, mask = pad(xyz, offsets)
        vol_pad, _ = pad(volume.astype(np.int64)[:, None], offsets)
        fr = None if frames is None else pad(np.asarray(frames)[:, None], offsets)[0][..., 0]
        seeds = helix_fit(padded, mask, vol_pad[..., 0], frames=fr)
    surfs = hit_surfaces(xyz, volume, frames)
    sigma = geometry.hit_resolution(volume)
    x0 = layer_material(volume, layer, offsets)
    passive = np.array(PASSIVE, dtype=np.float64)
    n = len(offsets) - 1
    params = np.empty((n, 5))
    covs = np.empty((n, 5, 5))
    chi2 = np.empty(n)
    ndf = np.empty(n, dtype=np.int64)
    seeds = np.ascontiguousarray(seeds, dtype=np.float64)
    for _ in range(max(iterations, 1)):
        _fit_all(
            surfs,
            sigma,
            x0,
            offsets,
            seeds,
            np.asarray(prior, dtype=np.float64),
            float(bfield),
            float(mass),
            passive,
            bool(multiple_scattering),
            params,
            covs,
            chi2,
            ndf,
        )
        seeds = np.where(np.isfinite(params), params, seeds)
    return KalmanResult(params=params, cov=covs, chi2=chi2, ndf=ndf)


def pad(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat per-hit rows + offsets -> ``(n, m, ...)`` zero-padded array and ``(n, m)`` mask."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    n = len(lengths)
    m = int(lengths.max()) if n else 0
    out = np.zeros((n, m, *values.shape[1:]), dtype=values.dtype)
    mask = np.arange(m)[None, :] < lengths[:, None]
    out[mask] = values
    return out, mask
