"""What the ACTS sequence hands back for one event (:class:`RawEvent`) and the clock its
elements mark. Shared by :mod:`lhcml.simulation.detector` (which runs the sequence) and
:mod:`lhcml.simulation._acts_elements` (the elements inside it); imports neither."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lhcml.simulation.generators import GenParticles


@dataclass
class RawEvent:
    """What ACTS produced for one event, as numpy arrays (one row per sim hit).

    Attributes:
        event_id: the event.
        gen: the generator particles of the event.
        fatras_rows: the rows of ``gen`` given to Fatras (the barcode's particle field
            indexes this array).
        hit_*: per sim hit: measured position (NaN if no measurement), true position,
            true momentum before the hit, geometry identifier fields, and the row of
            the particle in ``particle_*``.
        meas_rows: per measurement (the future hits), its first sim-hit row.
        particle_*: per simulated particle (generator input and Fatras secondaries),
            initial state and barcode fields.
        sp_*: pixel space points and the measurement each was made from.
        timings: seconds per stage.
    """

    event_id: int
    gen: GenParticles
    fatras_rows: np.ndarray  # generator row of each particle given to Fatras
    hit_meas: np.ndarray  # (n, 3) float32, NaN without measurement
    hit_true: np.ndarray  # (n, 3) float32
    hit_mom: np.ndarray  # (n, 3) float64
    hit_volume: np.ndarray
    hit_layer: np.ndarray
    hit_module: np.ndarray
    hit_particle_row: np.ndarray
    particle_barcode: np.ndarray  # (m, 5): vertex primary/secondary, particle, gen, sub
    particle_pdg: np.ndarray
    particle_charge: np.ndarray
    particle_vertex: np.ndarray  # (m, 3)
    particle_momentum: np.ndarray  # (m, 3)
    particle_parent: np.ndarray  # container row of the parent, -1 if none
    meas_rows: np.ndarray  # first sim-hit row of each measurement
    sp_meas: np.ndarray  # measurement index of each space point
    sp_xyz: np.ndarray  # (k, 3)
    sp_var: np.ndarray  # (k, 2) var_r, var_z
    timings: dict[str, float] = field(default_factory=dict)


class Clock:
    """Wall-clock marks of the current event, set by the sequence elements."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def span(self, start: str, stop: str) -> float:
        return self.marks[stop] - self.marks[start]
