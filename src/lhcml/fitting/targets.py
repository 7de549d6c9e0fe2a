"""Track parameters at the perigee: the convention every fitter in lhcml.fitting reports.

**Convention** (the ATLAS / ACTS perigee, with the beam line as reference):

- The reference is the z axis (``x = y = 0``). The *perigee* is the point of the track's
  transverse circle closest to it (point of closest approach, PCA).
- ``d0`` [mm]: signed transverse distance of the PCA from the z axis; the PCA is at
  ``(x, y) = (-d0 sin(phi), d0 cos(phi))``, i.e. ``d0 > 0`` when the z axis lies to the
  right of the track direction (``d0 = (d x p)_z / pT`` with ``d`` the PCA). This is
  ACTS' ``loc0`` on a perigee surface at the origin.
- ``z0`` [mm]: z of the PCA (ACTS' ``loc1``).
- ``phi`` [rad]: azimuth of the momentum at the PCA, in ``(-pi, pi]``.
- ``theta`` [rad]: polar angle of the momentum (constant along the helix in a solenoid);
  ``eta = -ln tan(theta / 2)``.
- ``qopt`` [e/GeV]: charge over transverse momentum ``q / pT``; ``qop = q / p`` is
  ``qopt * sin(theta)``.

**Field**: uniform, along +z, ``bfield`` tesla (2 T for the Generic detector). A
particle of charge ``q`` moves on a helix whose transverse curvature (``dphi/ds`` per
unit transverse path length ``s``) is ``kappa = -K * B * q / pT`` with
``K = 0.299792458e-3 GeV / (T mm)``: positive particles turn clockwise seen from +z.

**Truth targets** (:func:`truth_targets`): the particle's production vertex and momentum
(the ``particles`` table) carried analytically along that helix to the PCA; energy loss
and scattering between the vertex and the PCA are ignored (for primaries the two points
are microns apart). Parameters are in the order of :data:`PARAMS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: GeV / (T mm): pT [GeV] = K * B [T] * R [mm].
K_FIELD = 0.299792458e-3
#: Default solenoid field of the Generic detector [T].
BFIELD = 2.0
#: Names and order of the fitted parameters.
PARAMS: tuple[str, ...] = ("qopt", "theta", "phi", "d0", "z0")


def curvature(qopt: np.ndarray, bfield: float = BFIELD) -> np.ndarray:
    """Signed transverse curvature ``kappa = -K B q/pT`` [1/mm] (see the module docstring)."""
    return -K_FIELD * bfield * np.asarray(qopt, dtype=np.float64)


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angle(s) wrapped into ``(-pi, pi]``."""
    a = np.asarray(a, dtype=np.float64)
    return np.pi - np.mod(np.pi - a, 2.0 * np.pi)


def eta_from_theta(theta: np.ndarray) -> np.ndarray:
    """Pseudorapidity ``-ln tan(theta / 2)``."""
    return -np.log(np.tan(0.5 * np.asarray(theta, dtype=np.float64)))


def theta_from_eta(eta: np.ndarray) -> np.ndarray:
    """Polar angle ``2 atan(exp(-eta))``."""
    return 2.0 * np.arctan(np.exp(-np.asarray(eta, dtype=np.float64)))


def perigee_from_state(
    pos: np.ndarray, mom: np.ndarray, q: np.ndarray, bfield: float = BFIELD
) -> np.ndarray:
    """Perigee parameters of helices given by a point and the momentum there.

    Args:
        pos: (n, 3) a point on each track [mm].
        mom: (n, 3) the momentum at that point [GeV].
        q: (n,) charge [e] (non-zero).
        bfield: field along z [T].

    Returns:
        (n, 5) float64 ``qopt, theta, phi, d0, z0`` (see the module docstring); NaN rows
        for neutral particles or pT = 0.
    """
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    mom = np.asarray(mom, dtype=np.float64).reshape(-1, 3)
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    pt = np.hypot(mom[:, 0], mom[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        qopt = np.where((pt > 0) & (q != 0), q / pt, np.nan)
        theta = np.arctan2(pt, mom[:, 2])
        phi_v = np.arctan2(mom[:, 1], mom[:, 0])
        kappa = curvature(qopt, bfield)
        # Circle centre C = p + (-sin phi, cos phi) / kappa.
        cx = pos[:, 0] - np.sin(phi_v) / kappa
        cy = pos[:, 1] + np.cos(phi_v) / kappa
        cn = np.hypot(cx, cy)
        sg = np.sign(kappa)
        # Direction at the PCA: (sin psi, -cos psi) = -sign(kappa) C / |C|.
        psi = np.arctan2(-sg * cx / cn, sg * cy / cn)
        px = cx + np.sin(psi) / kappa
        py = cy - np.cos(psi) / kappa
        d0 = -px * np.sin(psi) + py * np.cos(psi)
        # Transverse path from the PCA to the given point (less than half a turn).
        s = wrap_angle(phi_v - psi) / kappa
        z0 = pos[:, 2] - s * mom[:, 2] / np.where(pt > 0, pt, np.nan)
    return np.column_stack([qopt, theta, wrap_angle(psi), d0, z0])


def helix_position(
    params: np.ndarray, s: np.ndarray, bfield: float = BFIELD
) -> tuple[np.ndarray, np.ndarray]:
    """Position and momentum direction angle along perigee helices.

    Args:
        params: (n, 5) ``qopt, theta, phi, d0, z0``.
        s: (n,) or (n, m) signed transverse path length from the PCA [mm].
        bfield: field [T].

    Returns:
        ``(xyz, phi)``: (..., 3) positions [mm] and the momentum azimuth there.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1, 5)
    s = np.asarray(s, dtype=np.float64)
    squeeze = s.ndim == 1
    s = s.reshape(len(p), -1)
    kappa = curvature(p[:, 0], bfield)[:, None]
    phi0 = p[:, 2][:, None]
    d0 = p[:, 3][:, None]
    half = 0.5 * kappa * s
    # sin(k s / 2) / (k s / 2) through np.sinc: exact straight-line limit at kappa = 0.
    chord = s * np.sinc(half / np.pi)
    mid = phi0 + half
    x = -d0 * np.sin(phi0) + chord * np.cos(mid)
    y = d0 * np.cos(phi0) + chord * np.sin(mid)
    z = p[:, 4][:, None] + s / np.tan(p[:, 1])[:, None]
    xyz = np.stack([x, y, z], axis=-1)
    phi = wrap_angle(phi0 + kappa * s)
    if squeeze:
        return xyz[:, 0], phi[:, 0]
    return xyz, phi


def truth_targets(particles: pd.DataFrame, bfield: float = BFIELD) -> pd.DataFrame:
    """True perigee parameters of every particle (see the module docstring).

    Args:
        particles: ``particle_id, vx, vy, vz, px, py, pz, q``.
        bfield: field [T].

    Returns:
        ``particle_id, qopt, theta, phi, d0, z0, pt, eta, q`` (float64; NaN for neutral).
    """
    pos = particles[["vx", "vy", "vz"]].to_numpy(np.float64)
    mom = particles[["px", "py", "pz"]].to_numpy(np.float64)
    q = particles["q"].to_numpy(np.float64)
    par = perigee_from_state(pos, mom, q, bfield)
    out = pd.DataFrame(par, columns=list(PARAMS))
    out.insert(0, "particle_id", particles["particle_id"].to_numpy(np.int64))
    out["pt"] = np.hypot(mom[:, 0], mom[:, 1])
    out["eta"] = eta_from_theta(par[:, 1])
    out["q"] = q
    return out
