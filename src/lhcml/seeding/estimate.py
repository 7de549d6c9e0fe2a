"""Track parameters from a seed's three space points, and the true perigee of particles.

Perigee parameters with respect to the beam line (x = y = 0), in lhcml units and ACTS's
conventions, vectorised over seeds (float64):

- the circle through the three points in x-y (exact circumcircle) gives the radius R,
  ``pT = 0.299792458e-3 * B[T] * R[mm]`` GeV, and the charge from the sense of rotation
  from bottom to top (clockwise seen from +z is positive for ``B_z > 0``);
- the point of closest approach (PCA) to the beam line is the circle point nearest to the
  origin; ``phi`` is the direction of motion there;
- ``d0 = (z x p_hat) . PCA``: signed as ACTS's perigee (``loc0``);
- ``z`` is linear in the transverse arc length ``s`` along the helix: a least-squares line
  through the three ``(s, z)`` points gives ``cot theta`` and ``z0`` at the PCA (``s = 0``);
- ``q/pT`` (e/GeV; 0 for a straight line) and ``q/p = q/pT * sin theta``.

Three collinear points (infinite radius) are a straight line: ``q/pT = 0``, charge 0.
:func:`particle_perigee` gives the same parameters for generated particles (vertex,
momentum, charge), the truth the seed estimates are compared with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: pT [GeV] per (B [T] * R [mm]).
PT_PER_TESLA_MM = 0.299792458e-3

PARAM_COLUMNS: tuple[str, ...] = ("q_over_pt", "pt", "phi", "theta", "eta", "d0", "z0", "charge")


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _perigee(
    xc: np.ndarray,
    yc: np.ndarray,
    radius: np.ndarray,
    rot: np.ndarray,
    line_dir: np.ndarray,
    line_point: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PCA ``(x, y)``, direction ``(dx, dy)`` at the PCA, for circles (``rot`` = +1
    counter-clockwise, -1 clockwise) or, where ``radius`` is infinite, straight lines
    through ``line_point`` along ``line_dir`` (both ``(n, 2)``)."""
    circle = np.isfinite(radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        dc = np.hypot(xc, yc)
        scale = np.where(dc > 0, 1.0 - radius / dc, 0.0)
        px = xc * scale
        py = yc * scale
        # Radius vector PCA - centre, turned by 90 degrees in the sense of motion.
        rx = (px - xc) / radius
        ry = (py - yc) / radius
    dx = np.where(circle, -rot * ry, line_dir[:, 0])
    dy = np.where(circle, rot * rx, line_dir[:, 1])
    # Straight line: PCA is the foot of the perpendicular from the origin.
    t = -(line_point[:, 0] * line_dir[:, 0] + line_point[:, 1] * line_dir[:, 1])
    lx = line_point[:, 0] + t * line_dir[:, 0]
    ly = line_point[:, 1] + t * line_dir[:, 1]
    px = np.where(circle, px, lx)
    py = np.where(circle, py, ly)
    return px, py, dx, dy


def _arc_length(
    x: np.ndarray,
    y: np.ndarray,
    xc: np.ndarray,
    yc: np.ndarray,
    radius: np.ndarray,
    rot: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
) -> np.ndarray:
    """Signed transverse path length from the PCA to points ``(x, y)`` (``(n, k)``) along
    the direction of motion."""
    circle = np.isfinite(radius)[:, None]
    with np.errstate(invalid="ignore"):
        a0 = np.arctan2(py - yc, px - xc)[:, None]
        a = np.arctan2(y - yc[:, None], x - xc[:, None])
        s_circle = radius[:, None] * rot[:, None] * _wrap(a - a0)
    s_line = (x - px[:, None]) * dx[:, None] + (y - py[:, None]) * dy[:, None]
    return np.where(circle, s_circle, s_line)


def estimate_parameters(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, *, bfield: float = 2.0
) -> pd.DataFrame:
    """Perigee parameters of seeds from their space points.

    Args:
        x, y, z: ``(n, 3)`` positions (mm) of bottom, middle and top space points.
        bfield: solenoid field along z (T).

    Returns:
        One row per seed with :data:`PARAM_COLUMNS`: ``q_over_pt`` (e/GeV), ``pt``
        (GeV, inf for a line), ``phi``, ``theta`` (rad), ``eta``, ``d0``, ``z0`` (mm),
        ``charge`` (-1, 0, +1).
    """
    x = np.asarray(x, np.float64).reshape(-1, 3)
    y = np.asarray(y, np.float64).reshape(-1, 3)
    z = np.asarray(z, np.float64).reshape(-1, 3)
    # Circumcircle relative to the bottom point.
    ax, ay = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
    bx, by = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
    cross = ax * by - ay * bx
    a2 = ax * ax + ay * ay
    b2 = bx * bx + by * by
    scale2 = np.maximum(a2 * b2, 1e-300)
    line = np.abs(cross) <= 1e-12 * np.sqrt(scale2)
    d = np.where(line, 1.0, 2.0 * cross)
    ux = (by * a2 - ay * b2) / d
    uy = (ax * b2 - bx * a2) / d
    xc = x[:, 0] + ux
    yc = y[:, 0] + uy
    radius = np.where(line, np.inf, np.hypot(ux, uy))
    rot = np.where(cross > 0, 1.0, -1.0)  # +1: counter-clockwise
    charge = np.where(line, 0.0, -rot * np.sign(bfield))
    norm = np.maximum(np.sqrt(b2), 1e-300)
    line_dir = np.column_stack([bx / norm, by / norm])
    px, py, dx, dy = _perigee(xc, yc, radius, rot, line_dir, np.column_stack([x[:, 0], y[:, 0]]))
    s = _arc_length(x, y, xc, yc, radius, rot, px, py, dx, dy)
    sm = s.mean(axis=1, keepdims=True)
    zm = z.mean(axis=1, keepdims=True)
    sss = ((s - sm) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cot = ((s - sm) * (z - zm)).sum(axis=1) / sss
    z0 = zm[:, 0] - cot * sm[:, 0]
    pt = PT_PER_TESLA_MM * abs(bfield) * radius
    with np.errstate(divide="ignore"):
        q_over_pt = np.where(line, 0.0, charge / pt)
    return pd.DataFrame(
        {
            "q_over_pt": q_over_pt,
            "pt": pt,
            "phi": np.arctan2(dy, dx),
            "theta": np.arctan2(1.0, cot),
            "eta": np.arcsinh(cot),
            "d0": dx * py - dy * px,
            "z0": z0,
            "charge": charge.astype(np.int8),
        }
    )


def seed_parameters(
    sp_rows: np.ndarray, spacepoints: pd.DataFrame, *, bfield: float = 2.0
) -> pd.DataFrame:
    """:func:`estimate_parameters` of seeds given as ``(n, 3)`` rows into a space-point
    table (``x, y, z``)."""
    rows = np.asarray(sp_rows, np.int64).reshape(-1, 3)
    cols = [spacepoints[c].to_numpy(np.float64)[rows] for c in ("x", "y", "z")]
    return estimate_parameters(*cols, bfield=bfield)


def particle_perigee(particles: pd.DataFrame, *, bfield: float = 2.0) -> pd.DataFrame:
    """True perigee parameters of particles from their production vertex and momentum.

    Args:
        particles: ``particle_id, vx, vy, vz, px, py, pz, q``.
        bfield: solenoid field along z (T).

    Returns:
        ``particle_id`` and :data:`PARAM_COLUMNS` (neutral particles: straight lines).
    """
    vx, vy, vz = (particles[c].to_numpy(np.float64) for c in ("vx", "vy", "vz"))
    mx, my, mz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    q = particles["q"].to_numpy(np.float64)
    pt = np.hypot(mx, my)
    safe_pt = np.where(pt > 0, pt, 1.0)
    ux, uy = mx / safe_pt, my / safe_pt
    charged = (q != 0) & (bfield != 0) & (pt > 0)
    radius = np.where(charged, pt / (PT_PER_TESLA_MM * abs(bfield)), np.inf)
    rot = np.where(-q * np.sign(bfield) > 0, 1.0, -1.0)
    # Centre on the left of the motion for counter-clockwise rotation.
    with np.errstate(invalid="ignore"):
        xc = np.where(charged, vx - rot * uy * radius, 0.0)
        yc = np.where(charged, vy + rot * ux * radius, 0.0)
    px, py, dx, dy = _perigee(
        xc, yc, radius, rot, np.column_stack([ux, uy]), np.column_stack([vx, vy])
    )
    s_v = _arc_length(vx[:, None], vy[:, None], xc, yc, radius, rot, px, py, dx, dy)[:, 0]
    cot = mz / safe_pt
    with np.errstate(divide="ignore"):
        q_over_pt = np.where(charged, q / safe_pt, 0.0)
    return pd.DataFrame(
        {
            "particle_id": particles["particle_id"].to_numpy(np.int64),
            "q_over_pt": q_over_pt,
            "pt": pt,
            "phi": np.arctan2(dy, dx),
            "theta": np.arctan2(1.0, cot),
            "eta": np.arcsinh(cot),
            "d0": dx * py - dy * px,
            "z0": vz - cot * s_v,
            "charge": np.sign(q).astype(np.int8),
        }
    )
