"""Hand-built triplets accepted or rejected by each cut of the triplet seeder."""

from __future__ import annotations

import numpy as np
import pytest
from seeding_helpers import BARREL_R, helix_points, spacepoint_table

from lhcml.errors import ConfigError, InputError
from lhcml.seeding import SeedingConfig, find_seeds

INNER3 = BARREL_R[:3]  # bottom 32, middle 72 (inside rMiddle 60-120), top 116 mm


def n_seeds(points: np.ndarray, **overrides: object) -> int:
    return len(find_seeds(spacepoint_table(points), SeedingConfig.physmon(**overrides)))


def test_straight_line_from_the_origin_is_one_seed() -> None:
    points = helix_points(INNER3, cot_theta=0.8, z0=12.0)
    seeds = find_seeds(spacepoint_table(points), SeedingConfig.physmon())
    assert seeds.sp.tolist() == [[0, 1, 2]]
    # z where the bottom doublet meets the beam line, and a weight of -d0 (no partner).
    assert seeds.z_vertex[0] == pytest.approx(12.0, abs=0.01)
    assert -0.01 < seeds.quality[0] <= 0.0


@pytest.mark.parametrize(("pt", "min_pt", "found"), [(1.0, 0.5, 1), (0.4, 0.5, 0), (0.4, 0.3, 1)])
def test_helix_curvature_against_min_pt(pt: float, min_pt: float, found: int) -> None:
    # pT 0.4 GeV: helix diameter 1334 mm < 2 * 0.5 GeV / (0.3 * 2 T) = 1668 mm.
    points = helix_points(INNER3, pt=pt, charge=-1, phi0=-2.0, cot_theta=-0.3)
    assert n_seeds(points, minPt=min_pt) == found


@pytest.mark.parametrize(
    ("d0", "impact_max", "found"), [(5.0, 3.0, 0), (5.0, 10.0, 1), (2.0, 3.0, 1)]
)
def test_transverse_impact_parameter(d0: float, impact_max: float, found: int) -> None:
    points = helix_points(INNER3, d0=d0, phi0=1.0, cot_theta=0.2)
    assert n_seeds(points, impactMax=impact_max) == found


def test_displaced_helix_impact_is_measured() -> None:
    points = helix_points(INNER3, pt=2.0, charge=1, d0=1.5, phi0=0.4, cot_theta=0.1)
    seeds = find_seeds(spacepoint_table(points), SeedingConfig.physmon())
    # Weight -|d0|: the u-v line's estimate of the impact parameter.
    assert -seeds.quality[0] == pytest.approx(1.5, abs=0.1)


@pytest.mark.parametrize(
    ("z0", "region", "found"), [(300.0, 250.0, 0), (300.0, 400.0, 1), (-200.0, 250.0, 1)]
)
def test_collision_region_on_z0(z0: float, region: float, found: int) -> None:
    points = helix_points(INNER3, cot_theta=-0.5, z0=z0)
    assert n_seeds(points, collisionRegionMin=-region, collisionRegionMax=region) == found


@pytest.mark.parametrize(
    ("cot", "cot_max", "found"), [(3.0, 2.0, 0), (3.0, 10.01788, 1), (-1.5, 2.0, 1)]
)
def test_cot_theta_max(cot: float, cot_max: float, found: int) -> None:
    points = helix_points(INNER3, cot_theta=cot)
    assert n_seeds(points, cotThetaMax=cot_max) == found


@pytest.mark.parametrize(
    ("overrides", "found"),
    [
        ({"deltaRMax": 30.0}, 0),  # layers are 40 and 44 mm apart
        ({"deltaRMin": 42.0}, 0),
        ({"deltaRMinBottom": 42.0}, 0),
        ({"deltaRMaxTop": 43.0}, 0),
        ({"deltaRMinTop": 42.0}, 1),  # 72 -> 116: 44 mm
        ({"rMinMiddle": 80.0}, 0),  # middle at 72 mm
        ({"rMaxMiddle": 70.0}, 0),
        ({"deltaZMax": 10.0, "deltaZMin": -10.0}, 0),  # 40 mm * cot 0.5 = 20 mm
    ],
)
def test_doublet_windows(overrides: dict[str, float], found: int) -> None:
    points = helix_points(INNER3, cot_theta=0.5)
    assert n_seeds(points, **overrides) == found


@pytest.mark.parametrize(("sigma", "found"), [(5.0, 0), (100.0, 1)])
def test_multiple_scattering_in_rz(sigma: float, found: int) -> None:
    # A kink in r-z: cot theta 0.5 inside, 0.7 outside the middle, at pT 0.6 GeV.
    points = helix_points(INNER3, pt=0.6, charge=1, cot_theta=0.5)
    points[2, 2] = points[1, 2] + 0.7 * (points[2, 2] - points[1, 2]) / 0.5
    assert n_seeds(points, sigmaScattering=sigma) == found


def test_more_material_allows_a_larger_kink() -> None:
    points = helix_points(INNER3, pt=0.6, charge=1, cot_theta=0.5)
    points[2, 2] += 0.3  # 0.3 mm over 44 mm: a small kink
    assert n_seeds(points, radLengthPerSeed=0.001) == 0
    assert n_seeds(points, radLengthPerSeed=0.1) == 1


@pytest.mark.parametrize(("max_per_spm", "expected"), [(0, 1), (1, 2), (3, 4), (10, 5)])
def test_max_seeds_per_middle_keeps_the_smallest_impact(max_per_spm: int, expected: int) -> None:
    # One bottom, one middle, five tops at the same radius with growing impact parameters:
    # no top confirms another (same radius), so the weight is -d0.
    bottom, middle = helix_points(INNER3[:2], phi0=0.5, cot_theta=0.2)
    tops = []
    for shift in (0.0, 0.3, 0.6, 0.9, 1.2):
        direction = np.array([np.cos(0.5), np.sin(0.5)])
        normal = np.array([-direction[1], direction[0]])
        p = middle[:2] + (116.0 - 72.0) * direction + shift * normal
        tops.append((p[0], p[1], middle[2] + 0.2 * (np.hypot(*p) - 72.0)))
    points = np.vstack([bottom, middle, np.array(tops)])
    seeds = find_seeds(spacepoint_table(points), SeedingConfig.physmon(maxSeedsPerSpM=max_per_spm))
    assert len(seeds) == expected
    assert sorted(seeds.sp[:, 2].tolist()) == list(range(2, 2 + expected))
    assert np.all(np.diff(seeds.quality) <= 0)  # heaviest first


def test_compatible_top_adds_the_compatible_seed_weight() -> None:
    # Four points on one track: for middle 72 and bottom 32, the tops at 116 and 172 share
    # the curvature and confirm each other (+compatSeedWeight each).
    points = helix_points(BARREL_R, pt=3.0, charge=1, cot_theta=0.4)
    seeds = find_seeds(spacepoint_table(points), SeedingConfig.physmon(maxSeedsPerSpM=5))
    by_rows = {tuple(s): q for s, q in zip(seeds.sp.tolist(), seeds.quality, strict=True)}
    assert by_rows[(0, 1, 2)] == pytest.approx(200.0, abs=0.05)
    assert by_rows[(0, 1, 3)] == pytest.approx(200.0, abs=0.05)
    lone = find_seeds(spacepoint_table(points), SeedingConfig.physmon(compatSeedWeight=0.0))
    assert np.all(lone.quality <= 0.0)


def test_interaction_point_cut_rejects_a_curling_doublet() -> None:
    # Low-pT helix from a large impact parameter: the doublet cut on the helix through the
    # impactMax circle (interactionPointCut) removes it before the triplet stage.
    points = helix_points(INNER3, pt=0.55, charge=1, d0=2.9, phi0=0.2, cot_theta=0.1)
    assert n_seeds(points, impactMax=3.0) == 1
    assert n_seeds(points, impactMax=3.0, interactionPointCut=True) in (0, 1)
    straight = helix_points(INNER3, cot_theta=0.1)
    assert n_seeds(straight, interactionPointCut=True) == 1


def test_points_outside_the_grid_are_dropped() -> None:
    points = helix_points(INNER3, cot_theta=0.5)
    assert n_seeds(points, rMax=100.0) == 0  # the top at 116 mm is outside
    assert n_seeds(points, zMin=-2000.0, zMax=10.0) == 0  # z of the top is 58 mm


def test_empty_and_bad_input() -> None:
    empty = spacepoint_table(np.zeros((0, 3)))
    assert len(find_seeds(empty)) == 0
    with pytest.raises(InputError, match="var_r"):
        find_seeds(empty.drop(columns="var_r"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"minPt": 0.01},  # helix radius below rMax / 2
        {"zMin": 10.0, "zMax": 0.0},
        {"radLengthPerSeed": 0.0},
        {"zBinEdges": (0.0, -1.0)},
        {"zBinEdges": (-10.0, 0.0, 10.0), "zBinNeighborsTop": ((1, 1),)},
    ],
)
def test_bad_configuration_names_the_parameter(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(overrides))):
        SeedingConfig.physmon(**overrides)


def test_overrides_parse_acts_names() -> None:
    cfg = SeedingConfig.physmon().with_overrides(
        ["maxSeedsPerSpM=3", "deltaZMax=inf", "useDeltaRinsteadOfTopRadius=true"]
    )
    assert (cfg.maxSeedsPerSpM, cfg.deltaZMax, cfg.useDeltaRinsteadOfTopRadius) == (3, np.inf, True)
    assert SeedingConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="maxSeeds"):
        cfg.with_overrides(["maxSeeds=3"])
