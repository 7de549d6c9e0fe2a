"""Pythia 8 ttbar with a little pile-up (mu = 2) through ACTS Fatras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lhcml.data.event import Event
from lhcml.data.validate import validate_event
from lhcml.io.acts import decode_barcode
from lhcml.simulation import SimulationConfig
from lhcml.simulation.generators import derive_seed
from lhcml.simulation.pythia import EventGenerator

#: Stable final-state species Pythia leaves undecayed (plus antiparticles).
STABLE = {11, 12, 13, 14, 16, 22, 211, 321, 130, 2212, 2112, 3122, 3112, 3222, 3312, 3322, 3334}


def test_particles_are_sensible(ttbar_event: Event) -> None:
    p = ttbar_event.particles
    assert len(p) > 100
    pdg = p["particle_type"].abs()
    assert set(pdg.unique()) <= STABLE, set(pdg.unique()) - STABLE
    assert pdg.isin([211]).sum() > 50  # mostly pions
    charged = pdg.isin([11, 13, 211, 321, 2212])
    assert (p.loc[charged, "q"].abs() == 1).all()
    assert (p.loc[pdg.isin([22, 130, 2112, 12, 14, 16]), "q"] == 0).all()


def test_subevents_at_spread_vertices(ttbar_event: Event) -> None:
    p = ttbar_event.particles
    n_pileup = ttbar_event.meta["n_pileup"]
    assert sorted(p["subevent"].unique()) == list(range(n_pileup + 1))
    vertices = np.array(ttbar_event.meta["primary_vertices"])
    assert vertices.shape == (n_pileup + 1, 3)
    prim = p[p["primary"]]
    # Primary particles start exactly at their sub-event's vertex.
    pv = vertices[prim["subevent"].to_numpy()]
    assert np.allclose(prim[["vx", "vy", "vz"]].to_numpy(), pv, atol=1e-3)
    # Beam spot: 12.5 um transverse, 50 mm along z.
    assert np.abs(vertices[:, :2]).max() < 0.1
    if n_pileup:
        assert np.ptp(vertices[:, 2]) > 0.1
    # Displaced generator decays and Fatras secondaries are not primary and say so in
    # the TrackML generation bits.
    gen_bits = decode_barcode(p["particle_id"].to_numpy())["generation"]
    assert ((gen_bits == 0) == p["primary"].to_numpy()).all()
    assert (~p["primary"]).sum() > 0
    assert (p.loc[~p["primary"], "prod_r"] >= 0).all()


def test_hits_and_links(ttbar_event: Event) -> None:
    event = ttbar_event
    validate_event(event)
    assert len(event.hits) > 1000
    assert set(event.hits["volume_id"].unique()) <= {7, 8, 9, 12, 13, 14, 16, 17, 18}
    assert {7, 8, 9, 13, 17}.issubset(event.hits["volume_id"].unique())
    counts = event.truth["particle_id"].value_counts()
    nhits = event.particles.set_index("particle_id")["nhits"]
    assert (nhits.reindex(counts.index) == counts).all()
    assert nhits.sum() == len(event.truth)
    # Every truth particle is in the particle table, secondaries with hits included.
    assert counts.index.isin(event.particles["particle_id"]).all()
    assert np.isclose(event.truth["weight"].sum(), 1.0, atol=1e-5)
    # Space points only on the selected pixel layers.
    sp = event.spacepoints.merge(event.hits, on="hit_id")
    assert sp["volume_id"].isin([7, 8, 9]).all()
    endcap = sp["volume_id"] != 8
    assert sp.loc[endcap & (sp["volume_id"] == 7), "layer_id"].isin([8, 10, 12, 14]).all()
    assert sp.loc[endcap & (sp["volume_id"] == 9), "layer_id"].isin([2, 4, 6, 8]).all()


def test_generation_is_reproducible_per_event() -> None:
    """Pythia is re-seeded per event: event 5 alone equals event 5 after others."""
    gen = EventGenerator(SimulationConfig(process="ttbar", mu=1.0, seed=11))
    alone = gen.generate(5)
    for e in (1, 2):
        gen.generate(e)
    after = gen.generate(5)
    assert np.array_equal(alone.pdg, after.pdg)
    assert np.array_equal(alone.px, after.px)
    assert np.array_equal(alone.vz, after.vz)
    assert not np.array_equal(gen.generate(6).px[:10], alone.px[:10])


def test_derived_seeds_are_stable() -> None:
    # Fixed numbers: changing the derivation would silently change every dataset.
    assert derive_seed(42, 0, 0) == derive_seed(42, 0, 0)
    assert derive_seed(42, 0, 0) != derive_seed(42, 1, 0)
    assert derive_seed(42, 0, 0) != derive_seed(42, 0, 1)
    assert 0 <= derive_seed(2**62, 10**9, 5) < 2**63


def test_events_do_not_depend_on_an_existing_init_cache(tmp_path: Path) -> None:
    """The first run (computing and saving Pythia's set-up) and later runs (loading it)
    generate the same events."""
    from lhcml.simulation import PythiaConfig

    cfg = SimulationConfig(process="ttbar", seed=2, pythia=PythiaConfig(cache_dir=tmp_path))
    first = EventGenerator(cfg).generate(0)
    assert len(list(tmp_path.glob("pythia-mpi-*.dat"))) == 1
    again = EventGenerator(cfg).generate(0)
    assert np.array_equal(first.px, again.px) and np.array_equal(first.pdg, again.pdg)


@pytest.mark.slow
def test_mu200_event(tmp_path: Path) -> None:
    """A full mu=200 ttbar event: hit counts and volume shares of the Generic detector."""
    from lhcml.io import read_event
    from lhcml.simulation import simulate_events

    summary = simulate_events(SimulationConfig(process="ttbar", mu=200, seed=42), tmp_path)
    assert summary.written == [0]
    event = read_event(tmp_path, 0)
    validate_event(event)
    assert 150 <= event.meta["n_pileup"] <= 250
    assert 80_000 < len(event.hits) < 180_000
    shares = event.hits["volume_id"].value_counts(normalize=True)
    assert 0.55 < shares[[7, 8, 9]].sum() < 0.75  # pixels (pMin 0.1 GeV: many soft tracks)
    assert shares[[16, 17, 18]].sum() > 0.03
    with_hits = event.particles[event.particles["nhits"] > 0]
    assert 8.0 < with_hits["nhits"].mean() < 13.0
    assert 30_000 < len(event.spacepoints) < 90_000
    # Per-stage time on this kind of machine: about 1.5 s per event in all.
    assert sum(summary.stage_seconds.values()) < 6.0
