"""Event simulation: Pythia 8 or a particle gun, ACTS Fatras on the Generic detector.

Quick use::

    from lhcml.simulation import SimulationConfig, simulate_events

    cfg = SimulationConfig(process="ttbar", mu=200, seed=1)
    simulate_events(cfg, "events/", events=10, jobs=2)

The output is one lhcml event per id in the TrackML layout (``docs/event-format.md``).
See :mod:`lhcml.simulation.detector` for how particles enter ACTS and results come
out, :mod:`lhcml.simulation.assemble` for the particle-id encoding and the definition
of primary particles, and :mod:`lhcml.simulation.runner` for parallel runs (processes or
dask) and resuming. Importing this package does not import ACTS or Pythia.
"""

from __future__ import annotations

from lhcml.simulation.config import (
    DetectorConfig,
    ParticleGunConfig,
    PythiaConfig,
    SimulationConfig,
)
from lhcml.simulation.runner import SimulationSummary, Simulator, simulate_events

__all__ = [
    "DetectorConfig",
    "ParticleGunConfig",
    "PythiaConfig",
    "SimulationConfig",
    "SimulationSummary",
    "Simulator",
    "simulate_events",
]
