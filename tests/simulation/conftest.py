"""Shared simulators of the simulation tests (built once per session: ~1 s each)."""

from __future__ import annotations

import pytest

from lhcml.data.event import Event
from lhcml.simulation import ParticleGunConfig, SimulationConfig, Simulator

#: Central muons: every one crosses the 4 pixel, 4 short-strip and 2 long-strip barrel
#: layers (|z| at the last layer stays inside the barrels for |eta| < 0.8).
MUON_GUN = ParticleGunConfig(
    pdg=13, random_charge=True, multiplicity=10, pt_min=1.0, pt_max=10.0, eta_min=-0.8, eta_max=0.8
)


@pytest.fixture(scope="session")
def gun_config() -> SimulationConfig:
    """10 muons per event, pT 1-10 GeV, |eta| < 0.8, no pile-up."""
    return SimulationConfig(process="gun", seed=7, gun=MUON_GUN)


@pytest.fixture(scope="session")
def gun_simulator(gun_config: SimulationConfig) -> Simulator:
    """A particle-gun simulator (detector built once)."""
    return Simulator(gun_config)


@pytest.fixture(scope="session")
def gun_events(gun_simulator: Simulator) -> list[Event]:
    """Events 0-2 of the muon gun."""
    return gun_simulator.events(range(3))


@pytest.fixture(scope="session")
def ttbar_event() -> Event:
    """One ttbar event with mu = 2 pile-up (three sub-events)."""
    sim = Simulator(SimulationConfig(process="ttbar", mu=2.0, seed=3))
    (event,) = sim.events([4])
    return event
