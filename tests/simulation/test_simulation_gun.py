"""Particle gun through ACTS Fatras: hit counts, helix, truth momentum, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lhcml.data.event import Event
from lhcml.data.validate import validate_event
from lhcml.io.acts import decode_barcode
from lhcml.simulation import SimulationConfig, Simulator

B_FIELD_T = 2.0
#: Radius of curvature [mm] per GeV of pT in 2 T: R = pT / (0.3 B) m.
MM_PER_GEV = 1000.0 / (0.299792458 * B_FIELD_T)


def _by_particle(event: Event) -> pd.DataFrame:
    return event.truth.merge(event.hits, on="hit_id").merge(
        event.particles, on="particle_id", suffixes=("", "_p")
    )


def test_each_muon_crosses_every_barrel_layer(gun_events: list[Event]) -> None:
    """Central muons: 4 pixel + 4 short-strip + 2 long-strip layers, overlaps on top."""
    for event in gun_events:
        assert len(event.particles) == 10
        assert (event.particles["particle_type"].abs() == 13).all()
        assert event.particles["primary"].all()
        t = _by_particle(event)
        assert (t["particle_id"] != 0).all()
        for _pid, hits in t.groupby("particle_id"):
            layers = hits.groupby("volume_id")["layer_id"].nunique().to_dict()
            assert layers == {8: 4, 13: 4, 17: 2}
            # One hit per layer, plus a few where neighbouring modules overlap.
            assert 10 <= len(hits) <= 18


def _helix_offsets(event: Event) -> pd.DataFrame:
    """Per hit: distance of the true position from the particle's initial helix, in the
    transverse plane (``off``) and along z (``dz``), with ``r`` and ``p``."""
    t = _by_particle(event)
    pt = np.hypot(t["px"], t["py"])
    radius = pt * MM_PER_GEV
    # Centre of the circle: the momentum turned by -q * 90 degrees (B along +z).
    q = t["q"].to_numpy()
    cx = t["vx"] + q * radius * t["py"] / pt
    cy = t["vy"] - q * radius * t["px"] / pt
    off = np.abs(np.hypot(t["tx"] - cx, t["ty"] - cy) - radius)
    # Along z the track is a straight line in the transverse path length R * angle.
    phi0 = np.arctan2(t["vy"] - cy, t["vx"] - cx)
    phi = np.arctan2(t["ty"] - cy, t["tx"] - cx)
    turn = np.abs(np.angle(np.exp(1j * (phi - phi0))))
    dz = np.abs(t["tz"] - (t["vz"] + t["pz"] / pt * radius * turn))
    return pd.DataFrame(
        {"off": off, "dz": dz, "r": np.hypot(t["tx"], t["ty"]), "p": np.hypot(pt, t["pz"])}
    )


def test_hits_lie_on_the_true_helix(gun_config: SimulationConfig) -> None:
    """Without material effects the true positions are exactly on the helix."""
    import dataclasses

    cfg = dataclasses.replace(
        gun_config, detector=dataclasses.replace(gun_config.detector, interactions=False)
    )
    for event in Simulator(cfg).events(range(2)):
        h = _helix_offsets(event)
        assert h["off"].max() < 0.02 and h["dz"].max() < 0.02


def test_hits_near_the_true_helix_with_scattering(gun_events: list[Event]) -> None:
    """With multiple scattering: deviations grow like r^1.5 / p (a few mm at 1 m, 1 GeV)."""
    for event in gun_events:
        h = _helix_offsets(event)
        tolerance = 0.05 + 40.0 * (h["r"] / 1000.0) ** 1.5 / h["p"]
        assert (h["off"] < tolerance).all() and (h["dz"] < tolerance).all()
        assert h.loc[h["r"] < 40, "off"].max() < 0.1  # first pixel layer


def test_measured_positions_near_truth(gun_events: list[Event]) -> None:
    """Smearing: pixel hits within ~5 sigma (14 um), strips within their strip length."""
    for event in gun_events:
        t = event.truth.merge(event.hits, on="hit_id")
        d = np.sqrt((t["x"] - t["tx"]) ** 2 + (t["y"] - t["ty"]) ** 2 + (t["z"] - t["tz"]) ** 2)
        pixel = t["volume_id"].isin([7, 8, 9])
        assert d[pixel].max() < 0.1
        assert d[~pixel].max() < 20.0  # long strips: sigma 3.1 mm along the strip
        assert 0.005 < d[pixel].std() < 0.03


def test_truth_momentum_at_first_hit_matches_gun(gun_events: list[Event]) -> None:
    for event in gun_events:
        t = _by_particle(event)
        t["r"] = np.hypot(t["tx"], t["ty"])
        first = t.sort_values("r").groupby("particle_id").first()
        gun_pt = np.hypot(first["px"], first["py"])
        hit_pt = np.hypot(first["tpx"], first["tpy"])
        assert ((gun_pt >= 1.0) & (gun_pt <= 10.0)).all()
        assert np.abs(hit_pt / gun_pt - 1).max() < 0.02


def test_event_tables_are_consistent(gun_events: list[Event]) -> None:
    for event in gun_events:
        validate_event(event)
        assert event.hits["hit_id"].tolist() == list(range(1, len(event.hits) + 1))
        counts = event.truth["particle_id"].value_counts()
        nhits = event.particles.set_index("particle_id")["nhits"]
        assert (nhits.reindex(counts.index) == counts).all()
        # TrackML order: by volume, layer, module.
        key = event.hits[["volume_id", "layer_id", "module_id"]].to_numpy()
        assert (np.diff(key[:, 0]) >= 0).all()
        assert np.isclose(event.truth["weight"].sum(), 1.0, atol=1e-5)
        assert (event.truth["weight"] >= 0).all()
        # Space points: pixel hits of the selected layers, at the hit position.
        sp = event.spacepoints.merge(event.hits, on="hit_id", suffixes=("", "_hit"))
        assert len(sp) > 0
        assert sp["volume_id"].isin([7, 8, 9]).all()
        assert np.allclose(sp[["x", "y", "z"]], sp[["x_hit", "y_hit", "z_hit"]], atol=1e-3)
        pixel_selected = event.hits["volume_id"].eq(8)  # all barrel pixel layers selected
        assert len(sp) == pixel_selected.sum()
        assert (sp["var_r"] >= 0).all() and (sp["var_z"] > 0).all()


def test_particle_id_encoding(gun_events: list[Event]) -> None:
    fields = decode_barcode(gun_events[0].particles["particle_id"].to_numpy())
    assert (fields["vertex_primary"] == 1).all()
    assert sorted(fields["particle"]) == list(range(1, 11))
    assert (fields["generation"] == 0).all() and (fields["sub_particle"] == 0).all()


def test_same_seed_same_events(gun_simulator: Simulator, gun_events: list[Event]) -> None:
    """Events depend on (seed, event id) only: order and grouping do not matter."""
    again = gun_simulator.events([2, 0])
    by_id = {e.event_id: e for e in again}
    for ref in (gun_events[0], gun_events[2]):
        other = by_id[ref.event_id]
        for name in ("hits", "truth", "particles", "spacepoints"):
            pd.testing.assert_frame_equal(getattr(ref, name), getattr(other, name))


def test_different_seed_different_events(
    gun_config: SimulationConfig, gun_events: list[Event]
) -> None:
    import dataclasses

    other = Simulator(dataclasses.replace(gun_config, seed=8)).events([0])[0]
    assert not np.allclose(
        other.particles["px"].to_numpy(), gun_events[0].particles["px"].to_numpy()
    )
    # Different events of one seed differ too.
    assert not gun_events[0].particles["px"].equals(gun_events[1].particles["px"])


def test_noise_hits_on_modules(gun_config: SimulationConfig) -> None:
    import dataclasses

    cfg = dataclasses.replace(
        gun_config,
        detector=dataclasses.replace(
            gun_config.detector, noise_fraction=0.5, noise_count=7, noise_volumes=(7, 14)
        ),
    )
    sim = Simulator(cfg)
    event = sim.events([0])[0]
    truth = event.truth.merge(event.hits, on="hit_id")
    noise = truth[truth["particle_id"] == 0]
    signal = len(truth) - len(noise)
    assert len(noise) == round(0.5 * signal) + 7
    assert noise["volume_id"].isin([7, 14]).all()
    assert (noise["weight"] == 0).all()
    validate_event(event)
    # Each noise hit lies in the plane of its module, inside its bounds.
    mods = sim.detector.modules
    index = pd.MultiIndex.from_arrays([mods.volume, mods.layer, mods.module])
    rows = index.get_indexer(
        pd.MultiIndex.from_frame(noise[["volume_id", "layer_id", "module_id"]])
    )
    assert (rows >= 0).all()
    local = np.einsum(
        "nji,nj->ni", mods.rotation[rows], noise[["x", "y", "z"]].to_numpy() - mods.center[rows]
    )
    assert np.abs(local[:, 2]).max() < 1e-3
    rect = ~mods.trapezoid[rows]
    b = mods.bounds[rows]
    tol = 1e-3
    assert (local[rect, 0] >= b[rect, 0] - tol).all() and (local[rect, 0] <= b[rect, 2] + tol).all()
    assert (np.abs(local[~rect, 1]) <= b[~rect, 2] + tol).all()


@pytest.mark.parametrize("pdg", [-13, 211, 11])
def test_gun_species_and_fixed_charge(gun_config: SimulationConfig, pdg: int) -> None:
    import dataclasses

    from lhcml.simulation.generators import particle_gun

    gun = dataclasses.replace(gun_config.gun, pdg=pdg, random_charge=False, multiplicity=50)
    rows = particle_gun(gun, np.random.default_rng(0))
    assert (rows[:, 0] == pdg).all()
    expected_q = {-13: 1.0, 211: 1.0, 11: -1.0}[pdg]
    assert (rows[:, 1] == expected_q).all()
    pt = np.hypot(rows[:, 3], rows[:, 4])
    assert ((pt >= 1.0) & (pt <= 10.0)).all()
