"""Seed metrics on hand counts, and resolutions of the estimates on a synthetic event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lhcml.data.event import Event
from lhcml.errors import InputError
from lhcml.metrics.tracking import FiducialSelection
from lhcml.seeding import SeedingConfig, find_seeds
from lhcml.seeding.evaluate import (
    SeedingPerformance,
    evaluate_event_seeds,
    seed_particles,
    seed_resolution,
    seeding_performance,
)
from lhcml.seeding.io import seeds_table

#: particle -> (pt, eta, primary, hits); hits 90-92 are noise.
PARTICLES = {
    1: (2.0, 0.5, True, [1, 2, 3, 4, 5]),
    2: (1.5, -1.0, True, [6, 7, 8]),
    3: (0.3, 0.1, True, [9, 10, 11]),  # below pT 1 GeV: not fiducial
    4: (3.0, 2.0, True, [12, 13, 14]),  # no seed
    5: (4.0, 1.0, False, [15, 16, 17]),  # secondary: not fiducial
}
NOISE = [90, 91, 92]
FIDUCIAL = FiducialSelection(pt_min=1.0, abs_eta_max=2.5, min_hits=3)
#: seeds (hit ids): matched p1, matched p1 again (duplicate), 2 of p2 + 1 of p3 (fake),
#: matched p3 (not fiducial, still no fake), noise (fake), matched p5 (secondary).
SEEDS = np.array(
    [[1, 2, 3], [2, 4, 5], [6, 7, 9], [9, 10, 11], [90, 91, 92], [15, 16, 17]], np.int64
)


def hand_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [(h, p) for p, (*_, hits) in PARTICLES.items() for h in hits]
    rows += [(h, 0) for h in NOISE]
    truth = pd.DataFrame(rows, columns=["hit_id", "particle_id"])
    ids = list(PARTICLES)
    pt = np.array([PARTICLES[p][0] for p in ids])
    eta = np.array([PARTICLES[p][1] for p in ids])
    particles = pd.DataFrame(
        {
            "particle_id": ids,
            "px": pt,
            "py": 0.0,
            "pz": pt * np.sinh(eta),
            "primary": [PARTICLES[p][2] for p in ids],
        }
    )
    return truth, particles


def test_seed_matching_needs_all_three_hits() -> None:
    truth, _ = hand_tables()
    assert seed_particles(SEEDS, truth).tolist() == [1, 1, 0, 3, 0, 5]
    with pytest.raises(InputError, match="not in the event's truth"):
        seed_particles(np.array([[1, 2, 999]]), truth)


def test_rates_on_hand_counts() -> None:
    truth, particles = hand_tables()
    params = pd.DataFrame({"pt": [2.1, 1.9, 1.4, 0.3, 0.8, 4.2], "eta": [0.5, 0.5, -1, 0.1, 0, 1]})
    perf = seeding_performance(SEEDS, truth, particles, seed_params=params, fiducial=FIDUCIAL)
    # Fiducial: p1, p2, p4 (p3 too soft, p5 secondary); only p1 has a matched seed.
    assert (perf.efficiency.k, perf.efficiency.n) == (1, 3)
    # Fakes: the mixed seed and the noise seed, of 6.
    assert (perf.fake_rate.k, perf.fake_rate.n) == (2, 6)
    # Matched: 4 seeds of 3 particles -> 1 duplicate.
    assert (perf.duplicate_rate.k, perf.duplicate_rate.n) == (1, 4)
    assert perf.n_seeds == 6 and perf.seeds_per_event == 6.0
    eff_pt = perf.binned["efficiency_vs_pt"]
    assert eff_pt.n.sum() == 3 and eff_pt.k.sum() == 1
    fake_pt = perf.binned["fake_rate_vs_pt"]
    assert fake_pt.n.sum() == 6 and fake_pt.k.sum() == 2
    dup_eta = perf.binned["duplicate_rate_vs_eta"]
    assert dup_eta.n.sum() == 4 and dup_eta.k.sum() == 1
    # Two events of the same counts pool.
    both = SeedingPerformance.combine([perf, perf])
    assert (both.efficiency.k, both.efficiency.n, both.n_events) == (2, 6, 2)
    assert both.seeds_per_event == 6.0
    assert both.to_dict()["fake_rate"]["value"] == pytest.approx(2 / 6)


def test_no_seeds() -> None:
    truth, particles = hand_tables()
    perf = seeding_performance(np.zeros((0, 3), np.int64), truth, particles, fiducial=FIDUCIAL)
    assert (perf.efficiency.k, perf.efficiency.n) == (0, 3)
    assert perf.fake_rate.n == 0 and np.isnan(perf.fake_rate.value)


def test_event_seeds_and_resolution(small_event: Event) -> None:
    seeds = find_seeds(small_event.spacepoints, SeedingConfig.physmon(maxSeedsPerSpM=5))
    table = seeds_table(seeds, small_event.spacepoints)
    fid = FiducialSelection(pt_min=0.5, abs_eta_max=2.5, min_hits=3)
    perf, residuals = evaluate_event_seeds(small_event, table, fiducial=fid)
    # Clean helices, 100 noise points: nearly every fiducial helix is seeded.
    assert perf.efficiency.value > 0.95
    assert len(residuals) == perf.fake_rate.n - perf.fake_rate.k
    res = seed_resolution(residuals)
    assert res.charge_ok.value > 0.99
    # Space points smeared by 14 um in z only: tight estimates.
    assert res.overall["pt"].width < 0.02
    assert res.overall["phi"].width < 1e-3
    assert res.overall["z0"].width < 0.1
    assert res.overall["d0"].width < 0.01
