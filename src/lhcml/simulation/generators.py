"""Generated (truth) particles of one event, the particle gun, and per-event seeding.

Generators return a :class:`GenParticles`: flat numpy arrays over all sub-events, with
production vertices already shifted to each sub-event's smeared primary vertex. The
detector stage turns them into an Arrow table for ACTS without a per-particle Python
loop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from lhcml.simulation.config import ParticleGunConfig, SimulationConfig
from lhcml.simulation.species import species

#: Random streams derived from (seed, event_id); one per independent consumer so that
#: changing how many numbers one consumer draws leaves the others untouched.
STREAM_EVENT = 0  # pile-up count, vertices, particle gun
STREAM_PYTHIA_HARD = 1
STREAM_PYTHIA_PILEUP = 2
STREAM_NOISE = 3
STREAM_SHUFFLE = 4
STREAM_ACTS = 5  # global (not per event): ACTS mixes the event number in itself

#: A generator particle produced further than this from its sub-event's primary vertex
#: (a decay of a long-lived hadron: K0s, Lambda, B, D, tau, ...) is not primary. Same
#: threshold as ACTS' own Pythia 8 interface (1 um).
PRIMARY_MAX_DISPLACEMENT_MM = 1e-3


def derive_seed(seed: int, event_id: int, stream: int) -> int:
    """A 63-bit seed that depends only on ``(seed, event_id, stream)``.

    Uses numpy's SeedSequence hashing, so nearby inputs give unrelated seeds and the
    result is the same on every machine and in every worker.
    """
    ss = np.random.SeedSequence([int(seed), int(event_id), int(stream)])
    return int(ss.generate_state(2, np.uint64)[0] >> np.uint64(1))


def event_rng(seed: int, event_id: int, stream: int) -> np.random.Generator:
    """numpy Generator for one event and stream."""
    return np.random.default_rng(derive_seed(seed, event_id, stream))


@dataclass
class GenParticles:
    """Final-state generator particles of one event (all arrays of equal length).

    Attributes:
        pdg: PDG id.
        charge: charge [e].
        mass: mass [GeV].
        vx, vy, vz: production vertex [mm] (primary vertex + generator displacement).
        vt: production time [mm/c].
        px, py, pz: momentum [GeV].
        subevent: 0 hard scatter, k the k-th pile-up interaction.
        index: 1-based number of the particle within its sub-event.
        primary: produced at the sub-event's primary vertex (not by a displaced decay).
        vertices: (n_subevents, 4) primary vertices (x, y, z, t).
    """

    pdg: np.ndarray
    charge: np.ndarray
    mass: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    vt: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    subevent: np.ndarray
    index: np.ndarray
    primary: np.ndarray
    vertices: np.ndarray

    def __len__(self) -> int:
        return len(self.pdg)

    @classmethod
    def from_subevents(cls, blocks: list[np.ndarray], vertices: np.ndarray) -> GenParticles:
        """Build from per-sub-event ``(n, 10)`` arrays of
        ``pdg, charge, mass, px, py, pz, x, y, z, t`` (vertex relative to the primary
        vertex) and the ``(n_sub, 4)`` primary vertices."""
        sizes = np.array([len(b) for b in blocks], dtype=np.int64)
        rows = np.concatenate(blocks) if blocks else np.zeros((0, 10))
        sub = np.repeat(np.arange(len(blocks), dtype=np.int32), sizes)
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        index = (np.arange(len(rows)) - starts + 1).astype(np.int32)
        disp = rows[:, 6:9]
        primary = np.einsum("ij,ij->i", disp, disp) <= PRIMARY_MAX_DISPLACEMENT_MM**2
        pv = vertices[sub]
        return cls(
            pdg=rows[:, 0].astype(np.int32),
            charge=rows[:, 1].astype(np.float32),
            mass=rows[:, 2].astype(np.float32),
            px=rows[:, 3].astype(np.float32),
            py=rows[:, 4].astype(np.float32),
            pz=rows[:, 5].astype(np.float32),
            vx=rows[:, 6] + pv[:, 0],
            vy=rows[:, 7] + pv[:, 1],
            vz=rows[:, 8] + pv[:, 2],
            vt=rows[:, 9] + pv[:, 3],
            subevent=sub,
            index=index,
            primary=primary,
            vertices=np.asarray(vertices, dtype=np.float64).reshape(-1, 4),
        )

    def select(self, mask: np.ndarray) -> GenParticles:
        """The particles where ``mask`` is true (vertices unchanged)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return GenParticles(**{k: (v if k == "vertices" else v[mask]) for k, v in kw.items()})


def smear_vertices(config: SimulationConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 4)`` Gaussian primary vertices (x, y, z, t=0) of the beam spot."""
    v = np.zeros((n, 4))
    v[:, 0:2] = rng.normal(0.0, 1.0, (n, 2)) * config.vertex_sigma_xy
    v[:, 2] = rng.normal(0.0, 1.0, n) * config.vertex_sigma_z
    return v


def particle_gun(gun: ParticleGunConfig, rng: np.random.Generator) -> np.ndarray:
    """``(n, 10)`` gun particles at the origin (same layout as the Pythia blocks)."""
    n = gun.multiplicity
    pdg = np.full(n, gun.pdg, dtype=np.int64)
    if gun.random_charge:
        pdg = pdg * rng.choice(np.array([-1, 1]), n)
    q_pos, mass = species(abs(gun.pdg))
    pt = rng.uniform(gun.pt_min, gun.pt_max, n)
    eta = rng.uniform(gun.eta_min, gun.eta_max, n)
    phi = rng.uniform(gun.phi_min, gun.phi_max, n)
    rows = np.zeros((n, 10))
    rows[:, 0] = pdg
    rows[:, 1] = q_pos * np.sign(pdg)
    rows[:, 2] = mass
    rows[:, 3] = pt * np.cos(phi)
    rows[:, 4] = pt * np.sin(phi)
    rows[:, 5] = pt * np.sinh(eta)
    return rows
