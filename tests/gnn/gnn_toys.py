"""Toy events for the GNN tests: helices from the beam line on a small barrel detector.

A module with a unique name (not ``conftest``): several test folders have a conftest.py,
so ``from conftest import ...`` would pick whichever was imported first."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lhcml.data.event import Event

#: Layer radii [mm] of the toy barrel; 16 phi sectors x 4 z rows of modules per layer.
RADII = (40.0, 80.0, 120.0, 170.0, 230.0)
N_PHI, N_Z, HALF_Z = 16, 4, 400.0


def module_of(phi: np.ndarray, z: np.ndarray) -> np.ndarray:
    sector = np.floor((phi + np.pi) / (2 * np.pi) * N_PHI).astype(np.int64) % N_PHI
    row = np.clip(np.floor((z + HALF_Z) / (2 * HALF_Z) * N_Z), 0, N_Z - 1).astype(np.int64)
    return sector * N_Z + row + 1


def toy_event(
    event_id: int, n_particles: int = 40, *, seed: int | None = None, noise: int = 0
) -> Event:
    """Particles of 1-10 GeV (|eta| < 0.8, z0 ~ N(0, 30 mm)) crossing the toy layers."""
    rng = np.random.default_rng(event_id if seed is None else seed)
    pt = rng.uniform(1.0, 10.0, n_particles)
    q = rng.choice([-1, 1], n_particles)
    phi0 = rng.uniform(-np.pi, np.pi, n_particles)
    eta = rng.uniform(-0.8, 0.8, n_particles)
    z0 = rng.normal(0.0, 30.0, n_particles)
    radius = pt / (0.299792458e-3 * 2.0)
    r = np.array(RADII)
    turn = np.arcsin(r[None, :] / (2 * radius[:, None]))
    phi = np.remainder(phi0[:, None] - q[:, None] * turn + np.pi, 2 * np.pi) - np.pi
    z = z0[:, None] + 2 * radius[:, None] * turn * np.sinh(eta)[:, None]
    rr = np.broadcast_to(r, phi.shape)
    layer = np.broadcast_to(2 * np.arange(1, len(RADII) + 1), phi.shape)
    x, y, zz = (rr * np.cos(phi)).ravel(), (rr * np.sin(phi)).ravel(), z.ravel()
    pid = np.repeat(np.arange(1, n_particles + 1), len(RADII)).astype(np.int64)
    if noise:
        nr = rng.choice(r, noise)
        nphi = rng.uniform(-np.pi, np.pi, noise)
        x = np.concatenate([x, nr * np.cos(nphi)])
        y = np.concatenate([y, nr * np.sin(nphi)])
        zz = np.concatenate([zz, rng.uniform(-300, 300, noise)])
        layer = np.concatenate([layer.ravel(), 2 * (np.searchsorted(r, nr) + 1)])
        pid = np.concatenate([pid, np.zeros(noise, np.int64)])
    n = len(x)
    phis = np.arctan2(y, x)
    hits = pd.DataFrame(
        {
            "hit_id": np.arange(1, n + 1, dtype=np.int64),
            "x": x.astype(np.float32),
            "y": y.astype(np.float32),
            "z": zz.astype(np.float32),
            "volume_id": np.full(n, 8, np.int32),
            "layer_id": np.asarray(layer).ravel().astype(np.int32),
            "module_id": module_of(phis, zz).astype(np.int32),
        }
    )
    truth = pd.DataFrame(
        {
            "hit_id": hits["hit_id"],
            "particle_id": pid,
            "tx": hits["x"],
            "ty": hits["y"],
            "tz": hits["z"],
            "tpx": np.float32(0),
            "tpy": np.float32(0),
            "tpz": np.float32(0),
            "weight": np.float32(1.0 / n),
        }
    )
    particles = pd.DataFrame(
        {
            "particle_id": np.arange(1, n_particles + 1, dtype=np.int64),
            "vx": np.float32(0),
            "vy": np.float32(0),
            "vz": z0.astype(np.float32),
            "px": (pt * np.cos(phi0)).astype(np.float32),
            "py": (pt * np.sin(phi0)).astype(np.float32),
            "pz": (pt * np.sinh(eta)).astype(np.float32),
            "q": q.astype(np.int32),
            "nhits": np.full(n_particles, len(RADII), np.int32),
            "particle_type": np.full(n_particles, 211, np.int32),
            "primary": np.ones(n_particles, bool),
            "prod_r": np.float32(0),
        }
    )
    # Shuffle the hit order: nothing may rely on hits being sorted along tracks.
    order = rng.permutation(n)
    hits = hits.iloc[order].reset_index(drop=True)
    hits["hit_id"] = np.arange(1, n + 1, dtype=np.int64)
    truth = truth.iloc[order].reset_index(drop=True)
    truth["hit_id"] = hits["hit_id"]
    return Event(event_id=event_id, hits=hits, truth=truth, particles=particles, meta={"toy": True})


def random_graph(n: int = 40, e: int = 150, seed: int = 0) -> tuple[Any, Any]:
    """Random node features ``(n, 4)`` and edges ``(2, e)`` (torch tensors) for layer tests."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 4, generator=g), torch.randint(0, n, (2, e), generator=g)
