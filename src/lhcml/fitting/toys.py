"""Analytic toy tracks: helices through idealised barrel cylinders or endcap disks.

For tests and calibration of the fitters without a detector simulation: tracks start at
a perigee, cross infinite cylinders (barrel) or planes ``z = const`` (endcap) at the
Generic detector's layer positions, optionally scatter there (Highland, Gaussian) and
leave hits smeared with the layer's resolution along r-phi and z (barrel) or r (endcap).
Vectorised over tracks with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lhcml.fitting import geometry
from lhcml.fitting.targets import BFIELD, curvature, perigee_from_state, wrap_angle

#: (radius [mm], volume) of the barrel layers of the Generic detector.
BARREL_LAYERS: tuple[tuple[float, int], ...] = (
    (32.0, 8),
    (72.0, 8),
    (116.0, 8),
    (172.0, 8),
    (260.0, 13),
    (360.0, 13),
    (500.0, 13),
    (660.0, 13),
    (820.0, 17),
    (1020.0, 17),
)
#: (|z| [mm], volume) of the endcap disks used by the endcap toys.
ENDCAP_DISKS: tuple[tuple[float, int], ...] = (
    (600.0, 9),
    (700.0, 9),
    (820.0, 9),
    (960.0, 9),
    (1100.0, 9),
    (1300.0, 9),
    (1500.0, 9),
    (1700.0, 14),
    (2000.0, 14),
    (2300.0, 14),
    (2600.0, 14),
)


@dataclass
class ToyTracks:
    """Toy tracks with a fixed number of hits each.

    Attributes:
        params: (n, 5) true perigee parameters ``qopt, theta, phi, d0, z0``.
        xyz: (n, m, 3) measured hits [mm] (true hits if no smearing).
        true_xyz: (n, m, 3) true crossing points.
        volume: (n, m) volume id of each hit.
        mask: (n, m) hit exists (False where the helix never reached the layer).
    """

    params: np.ndarray
    xyz: np.ndarray
    true_xyz: np.ndarray
    volume: np.ndarray
    mask: np.ndarray


def _advance(
    pos: np.ndarray, phi: np.ndarray, kappa: np.ndarray, cot: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    half = 0.5 * kappa * s
    chord = s * np.sinc(half / np.pi)
    mid = phi + half
    new = np.column_stack(
        [pos[:, 0] + chord * np.cos(mid), pos[:, 1] + chord * np.sin(mid), pos[:, 2] + s * cot]
    )
    return new, phi + kappa * s


def path_to_cylinder(
    pos: np.ndarray, phi: np.ndarray, kappa: np.ndarray, radius: float | np.ndarray
) -> np.ndarray:
    """Forward transverse path length to the cylinder ``r = radius`` (NaN if never reached).

    Newton iterations from the straight-line crossing; vectorised over tracks.
    """
    px, py = pos[:, 0], pos[:, 1]
    b = px * np.cos(phi) + py * np.sin(phi)
    c = px * px + py * py - np.asarray(radius) ** 2
    disc = b * b - c
    s = np.where(disc >= 0, -b + np.sqrt(np.maximum(disc, 0.0)), np.abs(b))
    for _ in range(8):
        xy, ph = _advance(pos, phi, kappa, np.zeros_like(phi), s)
        g = xy[:, 0] ** 2 + xy[:, 1] ** 2 - np.asarray(radius) ** 2
        dg = 2.0 * (xy[:, 0] * np.cos(ph) + xy[:, 1] * np.sin(ph))
        with np.errstate(divide="ignore", invalid="ignore"):
            s = s - g / dg
    xy, _ = _advance(pos, phi, kappa, np.zeros_like(phi), s)
    ok = (np.abs(np.hypot(xy[:, 0], xy[:, 1]) - radius) < 1e-6 * np.maximum(radius, 1.0)) & (s > 0)
    return np.where(ok, s, np.nan)


def highland(p: np.ndarray, x0: np.ndarray, mass: float = geometry.PION_MASS) -> np.ndarray:
    """Highland width of the plane scattering angle [rad] for momentum p [GeV] through
    ``x0`` radiation lengths (PDG form with the log term on the path)."""
    p = np.asarray(p, dtype=np.float64)
    beta = p / np.sqrt(p * p + mass * mass)
    x0 = np.maximum(np.asarray(x0, dtype=np.float64), 1e-12)
    return 0.0136 / (beta * p) * np.sqrt(x0) * (1.0 + 0.038 * np.log(x0 / beta**2))


def toy_tracks(
    n: int,
    rng: np.random.Generator,
    *,
    geometry_kind: str = "barrel",
    pt_range: tuple[float, float] = (1.0, 10.0),
    eta_range: tuple[float, float] = (-0.8, 0.8),
    d0_sigma: float = 0.0,
    z0_sigma: float = 0.0,
    smear: bool = True,
    scattering: bool = False,
    bfield: float = BFIELD,
) -> ToyTracks:
    """Generate ``n`` toy tracks.

    Args:
        n: number of tracks.
        rng: random generator.
        geometry_kind: ``barrel`` (cylinders :data:`BARREL_LAYERS`) or ``endcap``
            (disks :data:`ENDCAP_DISKS` on the side the track goes to).
        pt_range: uniform pT range [GeV]; charges are random.
        eta_range: uniform eta range.
        d0_sigma, z0_sigma: Gaussian spread of the true d0 / z0 [mm].
        smear: smear hits with the layer resolution.
        scattering: multiple scattering at each layer (Highland, Gaussian, pion mass,
            the layer material of :mod:`lhcml.fitting.geometry`).
        bfield: field [T].
    """
    pt = rng.uniform(*pt_range, n)
    q = rng.choice([-1.0, 1.0], n)
    eta = rng.uniform(*eta_range, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    d0 = rng.normal(0.0, d0_sigma, n) if d0_sigma > 0 else np.zeros(n)
    z0 = rng.normal(0.0, z0_sigma, n) if z0_sigma > 0 else np.zeros(n)
    theta = 2.0 * np.arctan(np.exp(-eta))
    p = pt / np.sin(theta)
    start = np.column_stack([-d0 * np.sin(phi), d0 * np.cos(phi), z0])
    mom = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt / np.tan(theta)])
    params = perigee_from_state(start, mom, q, bfield)
    layers = BARREL_LAYERS if geometry_kind == "barrel" else ENDCAP_DISKS
    m = len(layers)
    true = np.full((n, m, 3), np.nan)
    meas = np.full((n, m, 3), np.nan)
    vol = np.zeros((n, m), dtype=np.int32)
    pos, ph, th = start.copy(), phi.copy(), theta.copy()
    kappa = curvature(q / pt, bfield)
    alive = np.ones(n, dtype=bool)
    for j, (where, volume) in enumerate(layers):
        cot = 1.0 / np.tan(th)
        if geometry_kind == "barrel":
            s = path_to_cylinder(pos, ph, kappa, where)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (np.sign(cot) * where - pos[:, 2]) / cot
            s = np.where(s > 0, s, np.nan)
        alive &= np.isfinite(s)
        s = np.where(alive, s, 0.0)
        pos, ph = _advance(pos, ph, kappa, cot, s)
        if geometry_kind == "endcap":
            alive &= np.hypot(pos[:, 0], pos[:, 1]) < 1000.0
        true[alive, j] = pos[alive]
        vol[:, j] = volume
        sig = geometry.hit_resolution(np.full(n, volume))
        du = rng.normal(0.0, 1.0, n) * sig[:, 0] if smear else np.zeros(n)
        dv = rng.normal(0.0, 1.0, n) * sig[:, 1] if smear else np.zeros(n)
        big_phi = np.arctan2(pos[:, 1], pos[:, 0])
        ex, ey = -np.sin(big_phi), np.cos(big_phi)  # r-phi direction
        mx = pos[:, 0] + du * ex
        my = pos[:, 1] + du * ey
        mz = pos[:, 2].copy()
        if geometry_kind == "barrel":
            mz = mz + dv
        else:
            mx = mx + dv * np.cos(big_phi)
            my = my + dv * np.sin(big_phi)
        meas[alive, j] = np.column_stack([mx, my, mz])[alive]
        if scattering:
            if geometry_kind == "barrel":
                cos_inc = np.abs(np.sin(th) * np.cos(ph - big_phi))
            else:
                cos_inc = np.abs(np.cos(th))
            x0 = geometry.MATERIAL_X0[volume] / np.maximum(cos_inc, 1e-3)
            sigma = highland(p, x0)
            th = th + rng.normal(0.0, 1.0, n) * sigma
            ph = wrap_angle(ph + rng.normal(0.0, 1.0, n) * sigma / np.sin(th))
            # The transverse curvature follows the new pT = p sin(theta).
            kappa = curvature(q / (p * np.sin(th)), bfield)
    mask = np.isfinite(meas[..., 0])
    return ToyTracks(params=params, xyz=meas, true_xyz=true, volume=vol, mask=mask)


def toy_event(
    n_tracks: int,
    rng: np.random.Generator,
    *,
    event_id: int = 0,
    endcap_fraction: float = 0.3,
    pt_range: tuple[float, float] = (0.5, 10.0),
    smear: bool = True,
    scattering: bool = True,
    noise_hits: int = 0,
) -> Any:
    """An lhcml :class:`~lhcml.data.Event` made of toy tracks (barrel and endcap).

    Layer ids are ``2 * (index + 1)`` of :data:`BARREL_LAYERS` / :data:`ENDCAP_DISKS`,
    module ids 1 (toys have no modules); particles are primaries from the origin
    region; ``noise_hits`` random hits get particle id 0.
    """
    import pandas as pd

    from lhcml.data.event import Event

    n_end = round(endcap_fraction * n_tracks)
    parts = []
    for kind, n, eta in (("barrel", n_tracks - n_end, (-0.8, 0.8)), ("endcap", n_end, (1.9, 2.5))):
        if n == 0:
            continue
        t = toy_tracks(
            n,
            rng,
            geometry_kind=kind,
            pt_range=pt_range,
            eta_range=eta,
            d0_sigma=0.01,
            z0_sigma=30.0,
            smear=smear,
            scattering=scattering,
        )
        if kind == "endcap":
            flip = rng.random(n) < 0.5  # both endcaps
            t.xyz[flip, :, 2] *= -1
            t.true_xyz[flip, :, 2] *= -1
            t.params[flip, 1] = np.pi - t.params[flip, 1]
            t.params[flip, 4] *= -1
        parts.append(t)
    rows = []
    particles = []
    pid0 = 1
    for t in parts:
        for i in range(len(t.params)):
            m = t.mask[i]
            pid = (pid0 << 20) + 1
            pid0 += 1
            idx = np.flatnonzero(m)
            rows.append(
                pd.DataFrame(
                    {
                        "x": t.xyz[i, m, 0],
                        "y": t.xyz[i, m, 1],
                        "z": t.xyz[i, m, 2],
                        "volume_id": t.volume[i, m],
                        "layer_id": 2 * (idx + 1),
                        "module_id": 1,
                        "particle_id": pid,
                        "tx": t.true_xyz[i, m, 0],
                        "ty": t.true_xyz[i, m, 1],
                        "tz": t.true_xyz[i, m, 2],
                    }
                )
            )
            qopt, theta, phi, d0, z0 = t.params[i]
            pt = abs(1.0 / qopt)
            particles.append(
                {
                    "particle_id": pid,
                    "vx": -d0 * np.sin(phi),
                    "vy": d0 * np.cos(phi),
                    "vz": z0,
                    "px": pt * np.cos(phi),
                    "py": pt * np.sin(phi),
                    "pz": pt / np.tan(theta),
                    "q": int(np.sign(qopt)),
                    "nhits": int(m.sum()),
                    "particle_type": int(-211 * np.sign(qopt)),
                    "primary": True,
                    "prod_r": abs(d0),
                }
            )
    hits = pd.concat(rows, ignore_index=True)
    if noise_hits:
        r = rng.uniform(30.0, 1000.0, noise_hits)
        ph = rng.uniform(-np.pi, np.pi, noise_hits)
        noise = pd.DataFrame(
            {
                "x": r * np.cos(ph),
                "y": r * np.sin(ph),
                "z": rng.uniform(-1000.0, 1000.0, noise_hits),
                "volume_id": 8,
                "layer_id": 2,
                "module_id": 1,
                "particle_id": 0,
            }
        )
        noise[["tx", "ty", "tz"]] = noise[["x", "y", "z"]].to_numpy()
        hits = pd.concat([hits, noise], ignore_index=True)
    hits = hits.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    hits["hit_id"] = np.arange(1, len(hits) + 1, dtype=np.int64)
    f32 = np.float32
    hit_table = pd.DataFrame(
        {
            "hit_id": hits["hit_id"],
            "x": hits["x"].astype(f32),
            "y": hits["y"].astype(f32),
            "z": hits["z"].astype(f32),
            "volume_id": hits["volume_id"].astype(np.int32),
            "layer_id": hits["layer_id"].astype(np.int32),
            "module_id": hits["module_id"].astype(np.int32),
        }
    )
    truth = pd.DataFrame(
        {
            "hit_id": hits["hit_id"],
            "particle_id": hits["particle_id"].astype(np.int64),
            "tx": hits["tx"].astype(f32),
            "ty": hits["ty"].astype(f32),
            "tz": hits["tz"].astype(f32),
            "tpx": np.zeros(len(hits), f32),
            "tpy": np.zeros(len(hits), f32),
            "tpz": np.zeros(len(hits), f32),
            "weight": np.full(len(hits), 1.0 / len(hits), f32),
        }
    )
    p = pd.DataFrame(particles)
    for c in ("vx", "vy", "vz", "px", "py", "pz", "prod_r"):
        p[c] = p[c].astype(f32)
    for c in ("q", "nhits", "particle_type"):
        p[c] = p[c].astype(np.int32)
    p["particle_id"] = p["particle_id"].astype(np.int64)
    p["primary"] = p["primary"].astype(bool)
    return Event(
        event_id=event_id,
        hits=hit_table,
        particles=p,
        truth=truth,
        meta={"source": "lhcml.fitting.toys", "bfield_t": BFIELD},
    )
