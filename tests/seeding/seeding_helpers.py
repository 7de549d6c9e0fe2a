"""Hand-built helices and small synthetic events for the seeding tests (a module with a
unique name: test folders share one ``conftest`` module name, so helpers are not imported
from ``conftest``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lhcml.data.event import Event
from lhcml.seeding.estimate import PT_PER_TESLA_MM

#: Generic-detector pixel barrel radii (mm) and half length.
BARREL_R: tuple[float, ...] = (32.0, 72.0, 116.0, 172.0)
BARREL_HALF_Z = 490.0
VAR_Z_BARREL = 2.0833e-4  # (50 um)^2 / 12


def helix_points(
    radii: tuple[float, ...] | list[float],
    *,
    pt: float = np.inf,
    charge: int = 1,
    phi0: float = 0.3,
    cot_theta: float = 0.5,
    z0: float = 0.0,
    d0: float = 0.0,
    bfield: float = 2.0,
) -> np.ndarray:
    """``(len(radii), 3)`` points where a helix from its perigee crosses the cylinders.

    The perigee is ``d0 * (-sin phi0, cos phi0)`` (ACTS's sign), the direction there
    ``phi0``; ``pt = inf`` gives a straight line.
    """
    start = d0 * np.array([-np.sin(phi0), np.cos(phi0)])
    u = np.array([np.cos(phi0), np.sin(phi0)])
    s = np.linspace(0.0, 2.5 * max(radii) + abs(d0), 200001)
    if np.isinf(pt):
        xy = start[None, :] + s[:, None] * u[None, :]
    else:
        radius = pt / (PT_PER_TESLA_MM * bfield)
        rot = -np.sign(charge)  # +1 counter-clockwise (negative charge in +B)
        normal = rot * np.array([-u[1], u[0]])
        centre = start + radius * normal
        a0 = np.arctan2(start[1] - centre[1], start[0] - centre[0])
        ang = a0 + rot * s / radius
        xy = centre[None, :] + radius * np.column_stack([np.cos(ang), np.sin(ang)])
    r = np.hypot(xy[:, 0], xy[:, 1])
    out = []
    for target in radii:
        i = int(np.argmax(r >= target))
        assert r[i] >= target, "helix does not reach this radius"
        # Linear interpolation between samples i - 1 and i.
        f = (target - r[i - 1]) / (r[i] - r[i - 1])
        p = xy[i - 1] + f * (xy[i] - xy[i - 1])
        si = s[i - 1] + f * (s[i] - s[i - 1])
        out.append((p[0], p[1], z0 + cot_theta * si))
    return np.array(out)


def spacepoint_table(points: np.ndarray, *, first_hit: int = 1) -> pd.DataFrame:
    """A space-point table (barrel variances) for ``(n, 3)`` points."""
    n = len(points)
    return pd.DataFrame(
        {
            "hit_id": np.arange(first_hit, first_hit + n, dtype=np.int64),
            "x": points[:, 0].astype(np.float32),
            "y": points[:, 1].astype(np.float32),
            "z": points[:, 2].astype(np.float32),
            "var_r": np.zeros(n, np.float32),
            "var_z": np.full(n, VAR_Z_BARREL, np.float32),
        }
    )


def synthetic_event(
    n_tracks: int = 60, *, seed: int = 1, n_noise: int = 100, event_id: int = 0
) -> Event:
    """Primary helices (pT 0.4-5 GeV, |eta| < 1.5, z0 ~ N(0, 30 mm)) crossing the four
    pixel barrel layers (smeared by the pixel resolution), plus uniform noise."""
    rng = np.random.default_rng(seed)
    pts, pids, mom, parts = [], [], [], []
    for k in range(n_tracks):
        pt = float(rng.uniform(0.4, 5.0))
        eta = float(rng.uniform(-1.5, 1.5))
        phi0 = float(rng.uniform(-np.pi, np.pi))
        charge = int(rng.choice([-1, 1]))
        z0 = float(rng.normal(0.0, 30.0))
        cot = float(np.sinh(eta))
        p = helix_points(BARREL_R, pt=pt, charge=charge, phi0=phi0, cot_theta=cot, z0=z0)
        keep = np.abs(p[:, 2]) < BARREL_HALF_Z
        p = p[keep]
        pid = (k + 1) << 36  # the lhcml barcode layout: particle number in bits 36-51
        parts.append((pid, 0.0, 0.0, z0, pt * np.cos(phi0), pt * np.sin(phi0), pt * cot, charge))
        p[:, 2] += rng.normal(0.0, 0.0144, len(p))  # 50 um / sqrt(12) in z
        pts.append(p)
        pids += [pid] * len(p)
        mom += [(pt * np.cos(phi0), pt * np.sin(phi0), pt * cot)] * len(p)
    radii = rng.choice(BARREL_R, n_noise)
    ang = rng.uniform(-np.pi, np.pi, n_noise)
    noise = np.column_stack(
        [
            radii * np.cos(ang),
            radii * np.sin(ang),
            rng.uniform(-BARREL_HALF_Z, BARREL_HALF_Z, n_noise),
        ]
    )
    xyz = np.concatenate([*pts, noise])
    n = len(xyz)
    pid_all = np.array(pids + [0] * n_noise, np.int64)
    mom_all = np.array(mom + [(0.0, 0.0, 0.0)] * n_noise)
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    layer = 2 + 2 * np.argmin(np.abs(r[:, None] - np.array(BARREL_R)[None, :]), axis=1)
    hit_id = np.arange(1, n + 1, dtype=np.int64)
    hits = pd.DataFrame(
        {
            "hit_id": hit_id,
            "x": xyz[:, 0].astype(np.float32),
            "y": xyz[:, 1].astype(np.float32),
            "z": xyz[:, 2].astype(np.float32),
            "volume_id": np.full(n, 8, np.int32),
            "layer_id": layer.astype(np.int32),
            "module_id": np.zeros(n, np.int32),
        }
    )
    truth = pd.DataFrame(
        {
            "hit_id": hit_id,
            "particle_id": pid_all,
            "tx": xyz[:, 0].astype(np.float32),
            "ty": xyz[:, 1].astype(np.float32),
            "tz": xyz[:, 2].astype(np.float32),
            "tpx": mom_all[:, 0].astype(np.float32),
            "tpy": mom_all[:, 1].astype(np.float32),
            "tpz": mom_all[:, 2].astype(np.float32),
            "weight": np.zeros(n, np.float32),
        }
    )
    pa = np.array(parts)
    nhits = pd.Series(pid_all[pid_all != 0]).value_counts()
    particles = pd.DataFrame(
        {
            "particle_id": pa[:, 0].astype(np.int64),
            "vx": pa[:, 1].astype(np.float32),
            "vy": pa[:, 2].astype(np.float32),
            "vz": pa[:, 3].astype(np.float32),
            "px": pa[:, 4].astype(np.float32),
            "py": pa[:, 5].astype(np.float32),
            "pz": pa[:, 6].astype(np.float32),
            "q": pa[:, 7].astype(np.int32),
            "nhits": nhits.reindex(pa[:, 0].astype(np.int64)).fillna(0).to_numpy(np.int32),
            "particle_type": np.where(pa[:, 7] > 0, -13, 13).astype(np.int32),
            "primary": np.ones(len(pa), bool),
            "prod_r": np.zeros(len(pa), np.float32),
        }
    )
    sp = spacepoint_table(xyz)
    return Event(event_id, hits, particles, truth, spacepoints=sp, meta={"source": "test"})
