"""The event: the one data type every lhcml stage reads and writes.

Tables are pandas DataFrames with the columns of :mod:`lhcml.data.schema`
(positions in mm, momenta in GeV). ``particles`` and ``truth`` are ``None`` for
real data without truth; ``cells`` and ``spacepoints`` are optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Table names in the order they are written to disk (particles last: its file marks
#: a complete event).
TABLES: tuple[str, ...] = ("hits", "cells", "spacepoints", "truth", "particles")

#: Pixel volumes of the TrackML / ACTS Generic layout.
PIXEL_VOLUMES: tuple[int, ...] = (7, 8, 9)


@dataclass
class Event:
    """One collision event.

    Args:
        event_id: event number (the ``000000042`` in ``event000000042-hits.parquet``).
        hits: measured hits (``hit_id, x, y, z, volume_id, layer_id, module_id``).
        particles: generated particles, or ``None`` without truth.
        truth: hit to particle map with true position, momentum and score weight.
        cells: pixel / strip cells of each hit, if any.
        spacepoints: space points made from pixel hits, if any.
        meta: provenance: source file, generator, mu, seed, detector, ...
    """

    event_id: int
    hits: pd.DataFrame
    particles: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None
    spacepoints: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_truth(self) -> bool:
        """Whether both truth and particles are present."""
        return self.truth is not None and self.particles is not None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that are present, by name, in writing order."""
        present = {name: getattr(self, name) for name in TABLES}
        return {name: df for name, df in present.items() if df is not None}

    def hits_with_truth(self) -> pd.DataFrame:
        """Hits joined with their truth row and the particle's kinematics.

        Adds ``particle_id``, ``weight``, the true position / momentum, and the
        particle's ``pt``, ``eta``, ``q``, ``nhits`` (NaN / 0 for noise).
        """
        if self.truth is None:
            raise ValueError(f"event {self.event_id} has no truth")
        merged = self.hits.merge(self.truth, on="hit_id", how="left", validate="one_to_one")
        if self.particles is not None:
            kin = particle_kinematics(self.particles)[["particle_id", "pt", "eta", "q", "nhits"]]
            merged = merged.merge(kin, on="particle_id", how="left", validate="many_to_one")
        return merged

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={len(df)}" for name, df in self.tables().items())
        return f"Event(event_id={self.event_id}, {parts})"


def particle_kinematics(particles: pd.DataFrame) -> pd.DataFrame:
    """Particles with ``pt``, ``p``, ``eta``, ``phi`` and ``prod_r`` columns added."""
    px = particles["px"].to_numpy(np.float64)
    py = particles["py"].to_numpy(np.float64)
    pz = particles["pz"].to_numpy(np.float64)
    pt = np.hypot(px, py)
    out = particles.assign(
        pt=pt,
        p=np.sqrt(pt**2 + pz**2),
        # arcsinh(pz / pt) is eta; NaN (not a warning) for particles along the beam.
        eta=np.arcsinh(pz / np.where(pt > 0, pt, np.nan)),
        phi=np.arctan2(py, px),
    )
    if "prod_r" not in out.columns:
        out["prod_r"] = np.hypot(out["vx"].to_numpy(np.float64), out["vy"].to_numpy(np.float64))
    return out
