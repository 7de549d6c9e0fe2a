"""Hashing-bucketed seeding: the single-bucket identity, merging, phi periodicity, and the
exact batched neighbour builders against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from seeding_helpers import BARREL_R, helix_points, spacepoint_table

from lhcml.data.event import Event
from lhcml.errors import ConfigError
from lhcml.seeding import SeedingConfig, find_seeds
from lhcml.seeding.finder import Seeds
from lhcml.seeding.hashing import (
    BUILDERS,
    HashingConfig,
    _merge_bucket_lists,
    compute_buckets,
    find_seeds_hashing,
    hashing_features,
    merge_seeds,
)

CONFIG = SeedingConfig.physmon(maxSeedsPerSpM=1)


def as_set(seeds: Seeds) -> set[tuple[int, int, int]]:
    return set(map(tuple, seeds.sp.tolist()))


@pytest.mark.parametrize("query", ["points", "bins"])
@pytest.mark.parametrize("features", [1, 2])
def test_one_bucket_with_every_point_gives_the_standard_seeds(
    small_event: Event, query: str, features: int
) -> None:
    sp = small_event.spacepoints
    standard = find_seeds(sp, CONFIG).sorted()
    one = HashingConfig.acts(bucketSize=len(sp), phiBins=1, query=query, f=features)
    hashed = find_seeds_hashing(sp, CONFIG, one)
    assert hashed.timings["n_buckets"] == 1
    assert len(standard) > 50
    np.testing.assert_array_equal(hashed.sp, standard.sp)
    np.testing.assert_array_equal(hashed.quality, standard.quality)
    np.testing.assert_array_equal(hashed.z_vertex, standard.z_vertex)


@pytest.mark.parametrize("builder", BUILDERS)
def test_single_bucket_identity_through_each_builder(small_event: Event, builder: str) -> None:
    # bucketSize one short of everything: the index answers (no shortcut), and the union
    # of the query points' neighbour lists is still every space point.
    sp = small_event.spacepoints
    cfg = HashingConfig.acts(bucketSize=len(sp) - 1, phiBins=1, nTrees=4, builder=builder)
    hashed = find_seeds_hashing(sp, CONFIG, cfg)
    assert hashed.timings["bucket_entries"] == len(sp)
    assert as_set(hashed) == as_set(find_seeds(sp, CONFIG))


@pytest.mark.parametrize("query", ["points", "bins"])
def test_exact_builders_give_the_nearest_points(small_event: Event, query: str) -> None:
    # Each bucket of the batched builders is the union of exact k-nearest lists (brute
    # force here) and the bin's own query points; KD-tree and faiss agree, and Annoy's
    # approximate buckets overlap them mostly.
    sp = small_event.spacepoints
    x, y, z = (sp[c].to_numpy(np.float32) for c in "xyz")
    rows = np.arange(len(sp))
    k = 40
    got = {}
    for builder in BUILDERS:
        cfg = HashingConfig(bucketSize=k, zBins=2, phiBins=6, query=query, builder=builder)
        bucket, row, _ = compute_buckets(x, y, z, rows, cfg)
        assert len(set(zip(bucket.tolist(), row.tolist(), strict=True))) == len(row)
        got[builder] = {b: set(row[bucket == b].tolist()) for b in np.unique(bucket)}
    assert got["kdtree"] == got["faiss"]
    f = hashing_features(x, y, z, cfg).astype(np.float64)
    r = np.hypot(x, y)
    layer = np.flatnonzero((r >= cfg.layerRMin) & (r <= cfg.layerRMax))
    phi_bin = ((np.arctan2(y[layer], x[layer]) + np.pi) / (2 * np.pi / 6)).astype(int)
    z_bin = np.clip(((z[layer] + 550.0 + 275.0) / 550.0).astype(int), 0, 1)
    cells = z_bin * 6 + phi_bin
    expected = []
    for c in np.unique(cells):
        members = layer[cells == c]
        centres = [f[members].mean(axis=0)] if query == "bins" else f[members]
        near = set(members.tolist())
        for centre in centres:
            d = np.linalg.norm(f - centre, axis=1)
            near |= set(np.argsort(d, kind="stable")[:k].tolist())
        expected.append(near)
    exact = list(got["kdtree"].values())
    assert len(exact) == len(expected) >= 6
    assert exact == expected
    shared = sum(len(a & b) for a, b in zip(exact, got["annoy"].values(), strict=True))
    assert shared >= 0.7 * sum(len(a) for a in exact)


def test_merge_bucket_lists_hand_count() -> None:
    # Bin 3: neighbours 5, 1, 2 and query points 1 (again) and 7; bin 5: query point 6
    # only; bin 8: neighbours 1, 4 and query point 4 (again).
    bins_a = np.array([3, 3, 3, 8, 8], np.int64)
    rows_a = np.array([5, 1, 2, 1, 4], np.int64)
    bins_b = np.array([3, 3, 5, 8], np.int64)
    rows_b = np.array([1, 7, 6, 4], np.int64)
    bucket, row = _merge_bucket_lists(bins_a, rows_a, bins_b, rows_b, 10)
    pairs = sorted(zip(bucket.tolist(), row.tolist(), strict=True))
    assert pairs == [(0, 1), (0, 2), (0, 5), (0, 7), (1, 6), (2, 1), (2, 4)]
    empty = np.zeros(0, np.int64)
    assert len(_merge_bucket_lists(empty, empty, empty, empty, 3)[0]) == 0


def test_buckets_merge_without_duplicates(small_event: Event) -> None:
    sp = small_event.spacepoints
    cfg = HashingConfig.acts(bucketSize=120, phiBins=12, nTrees=2)
    hashed = find_seeds_hashing(sp, CONFIG, cfg)
    assert hashed.timings["n_buckets"] == 12
    # Buckets overlap, so the same space point sits in several of them ...
    assert hashed.timings["bucket_entries"] > len(sp)
    # ... but every triplet comes out once.
    assert len(as_set(hashed)) == len(hashed)
    keys = hashed.sp.tolist()
    assert keys == sorted(keys)


def test_merge_keeps_the_best_copy() -> None:
    sp = np.array([[0, 1, 2], [3, 4, 5], [0, 1, 2]], np.int64)
    merged = merge_seeds(
        Seeds(sp, np.array([1.0, 5.0, 3.0], np.float32), np.zeros(3, np.float32)), 10
    )
    assert merged.sp.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert merged.quality.tolist() == [3.0, 5.0]


def test_phi_features_are_periodic() -> None:
    cfg = HashingConfig.acts()
    x = np.array([-100.0, -100.0, 100.0], np.float32)
    y = np.array([0.01, -0.01, 0.0], np.float32)  # phi = +-pi (almost), and 0
    f = hashing_features(x, y, np.zeros(3, np.float32), cfg)
    d = np.linalg.norm(f[:, None, :] - f[None, :, :], axis=2)
    assert d[0, 1] < 1e-3  # across the phi = +-pi seam: neighbours
    assert d[0, 2] == pytest.approx(2.0, abs=1e-3)


def test_buckets_span_the_phi_seam() -> None:
    # A track at phi = pi: its points sit on both sides of the seam.
    points = np.vstack(
        [
            helix_points(BARREL_R, pt=2.0, charge=-1, phi0=np.pi - 0.012, cot_theta=0.1),
            helix_points(BARREL_R, phi0=0.5, cot_theta=0.1),
        ]
    )
    phi = np.arctan2(points[:, 1], points[:, 0])
    assert (phi[:4] > 0).any() and (phi[:4] < 0).any()
    x, y, z = (points[:, i].astype(np.float32) for i in range(3))
    cfg = HashingConfig.acts(bucketSize=4, phiBins=8)
    bucket, row = compute_buckets(x, y, z, np.arange(8), cfg)[:2]
    seam = set(row[bucket == bucket[row == 0][0]].tolist())
    assert {0, 1, 2, 3} <= seam
    sp = spacepoint_table(points)
    assert as_set(find_seeds_hashing(sp, CONFIG, cfg)) == as_set(find_seeds(sp, CONFIG))


def test_default_buckets_recover_seeds(small_event: Event) -> None:
    # lhcml's defaults: (phi, eta) cells; every helix seeded by the standard seeder with a
    # loose cap is also seeded inside the buckets with the tight one.
    sp = small_event.spacepoints
    hashed = find_seeds_hashing(sp, CONFIG)
    assert hashed.timings["n_buckets"] > 20
    pid = small_event.truth.set_index("hit_id")["particle_id"]

    def found(seeds: Seeds) -> set[int]:
        p = pid.loc[seeds.hit_ids(sp).ravel()].to_numpy().reshape(-1, 3)
        ok = (p[:, 0] == p[:, 1]) & (p[:, 1] == p[:, 2]) & (p[:, 0] != 0)
        return set(p[ok, 0].tolist())

    loose = find_seeds(sp, SeedingConfig.physmon(maxSeedsPerSpM=5))
    assert len(found(hashed)) >= len(found(loose)) - 1


def test_z_binning_and_bad_parameters(small_event: Event) -> None:
    sp = small_event.spacepoints
    hashed = find_seeds_hashing(sp, CONFIG, HashingConfig.acts(bucketSize=200, zBins=5, f=2))
    assert 1 <= hashed.timings["n_buckets"] <= 5
    both = HashingConfig(bucketSize=200, zBins=3, phiBins=4, binning="z-phi", query="bins")
    assert find_seeds_hashing(sp, CONFIG, both).timings["n_buckets"] <= 12
    for bad in (
        {"bucketSize": 0},
        {"f": 3},
        {"zBins": 0, "phiBins": 0},
        {"query": "all"},
        {"binning": "z-phi", "zBins": 0},
        {"builder": "hnsw"},
    ):
        with pytest.raises(ConfigError):
            HashingConfig(**bad)  # type: ignore[arg-type]
