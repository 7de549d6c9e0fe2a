"""Our seeder against ACTS's GridTripletSeedingAlgorithm (pyacts) on the same space points."""

from __future__ import annotations

import numpy as np
import pytest
from seeding_helpers import synthetic_event

from lhcml.seeding import SeedingConfig, find_seeds
from lhcml.seeding.acts_reference import run_acts_seeding

pytest.importorskip("acts")

CONFIGS = {
    "physmon": SeedingConfig.physmon(),
    "loose": SeedingConfig.physmon(maxSeedsPerSpM=4, compatSeedLimit=3, sigmaScattering=8.0),
    "variants": SeedingConfig.physmon(
        interactionPointCut=True,
        deltaRMinTop=20.0,
        deltaRMaxBottom=90.0,
        zBinEdges=(-2000.0, -300.0, -100.0, 0.0, 100.0, 300.0, 2000.0),
        zBinsCustomLooping=(3, 4, 2, 5, 1, 6),
        useDeltaRinsteadOfTopRadius=True,
        deltaZMin=-400.0,
        deltaZMax=400.0,
    ),
    "variable middle": SeedingConfig.physmon(useVariableMiddleSPRange=True, rMax=180.0),
}


def _compare(events: list, configs: dict[str, SeedingConfig]) -> None:
    for name, config in configs.items():
        acts_seeds = run_acts_seeding(events, config)
        for sp, ref in zip(events, acts_seeds, strict=True):
            ours = find_seeds(sp, config)
            assert len(ref) > 100, name
            ours_set = set(map(tuple, ours.sp.tolist()))
            ref_set = set(map(tuple, ref.sp.tolist()))
            assert ours_set == ref_set, name
            q_ours = dict(zip(map(tuple, ours.sp.tolist()), ours.quality.tolist(), strict=True))
            q_ref = np.array([q_ours[t] for t in map(tuple, ref.sp.tolist())])
            np.testing.assert_allclose(q_ref, ref.quality, rtol=1e-6, atol=1e-4)
            assert ref.timings["total"] > 0


def test_same_seeds_as_acts_physmon() -> None:
    _compare(
        [synthetic_event(200, seed=3, n_noise=800).spacepoints], {"physmon": CONFIGS["physmon"]}
    )


@pytest.mark.slow
def test_same_seeds_as_acts_every_option() -> None:
    # Dense enough for every filter path: 300 helices, 1500 noise points, two events.
    _compare([synthetic_event(300, seed=s, n_noise=1500).spacepoints for s in (3, 4)], CONFIGS)
