"""Track building on hand-made graphs: chains stay whole, Y junctions are split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lhcml.errors import ConfigError
from lhcml.gnn.track_building import (
    METHODS,
    best_edges,
    build_tracks,
    connected_components,
    walkthrough,
)


def chain(nodes: list[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise(nodes))


def graph(edges: list[tuple[int, int]], scores: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(edges, dtype=np.int64).T.reshape(2, -1), np.array(scores, dtype=np.float64)


def groups(tid: np.ndarray) -> set[frozenset[int]]:
    """Tracks as sets of node indices (unassigned nodes left out)."""
    return {frozenset(np.flatnonzero(tid == t).tolist()) for t in np.unique(tid[tid >= 0])}


@pytest.mark.parametrize("method", METHODS)
def test_a_chain_stays_whole(method: str) -> None:
    ei, s = graph(chain([0, 1, 2, 3, 4, 5]), [0.9] * 5)
    tid = build_tracks(6, ei, s, np.arange(6.0), method=method, min_hits=3)
    assert groups(tid) == {frozenset(range(6))}


@pytest.mark.parametrize("method", ["junction", "walk", "longest", "cc_walk"])
def test_a_y_junction_is_split(method: str) -> None:
    # Track A: 0-1-2-3-4-5; at node 2 a wrong edge 2->6 leads into track B: 6-7-8.
    # Node 6 also has its own true inner hits 9, 10 (track B: 9-10-6-7-8).
    edges = [*chain([0, 1, 2, 3, 4, 5]), (2, 6), *chain([9, 10, 6, 7, 8])]
    scores = [0.9, 0.95, 0.9, 0.9, 0.9, 0.6, 0.9, 0.9, 0.9, 0.9]
    ei, s = graph(edges, scores)
    key = np.array([0, 1, 2, 3, 4, 5, 2.5, 3.5, 4.5, 0.5, 1.5])
    tid = build_tracks(11, ei, s, key, method=method, min_hits=3)
    assert groups(tid) == {frozenset(range(6)), frozenset({9, 10, 6, 7, 8})}


def test_plain_connected_components_merge_a_y_junction() -> None:
    edges = [*chain([0, 1, 2, 3, 4, 5]), (2, 6), *chain([9, 10, 6, 7, 8])]
    ei, s = graph(edges, [0.9] * 10)
    tid = build_tracks(11, ei, s, np.zeros(11), method="cc", min_hits=3)
    assert groups(tid) == {frozenset(range(11))}


def test_threshold_and_minimum_length() -> None:
    # 0-1-2-3 | 3-4 weak | 4-5-6 (3 hits) | 7-8 (2 hits): with min_hits 3 the pair goes.
    edges = [*chain([0, 1, 2, 3]), (3, 4), *chain([4, 5, 6]), (7, 8)]
    ei, s = graph(edges, [0.9, 0.9, 0.9, 0.2, 0.9, 0.9, 0.9])
    for method in METHODS:
        tid = build_tracks(9, ei, s, np.arange(9.0), method=method, min_hits=3)
        assert groups(tid) == {frozenset({0, 1, 2, 3}), frozenset({4, 5, 6})}, method
        assert tid[7] == tid[8] == -1


def test_walkthrough_follows_the_best_branch() -> None:
    # From 0: 0->1 (0.7) or 0->2 (0.9); each continues outwards.
    edges = [(0, 1), (0, 2), (1, 3), (2, 4), (4, 5)]
    ei, s = graph(edges, [0.7, 0.9, 0.9, 0.9, 0.9])
    labels = walkthrough(6, ei, s, 0.5, np.array([0, 1, 1, 2, 2, 3.0]))
    assert labels[0] == labels[2] == labels[4] == labels[5]
    assert labels[1] == labels[3] != labels[0]


def test_longest_paths_prefer_the_branch_that_continues() -> None:
    # At node 2 the best edge (0.9) leads to a dead end (6); the weaker one (0.6) continues
    # the track 3-4-5. The greedy walk cuts the track, the longest path keeps it whole.
    edges = [*chain([0, 1, 2]), (2, 6), (2, 3), *chain([3, 4, 5])]
    ei, s = graph(edges, [0.9, 0.9, 0.9, 0.6, 0.9, 0.9])
    key = np.array([0, 1, 2, 3, 4, 5, 3.0])
    greedy = build_tracks(7, ei, s, key, method="walk", walk_threshold=0.5, min_hits=3)
    longest = build_tracks(7, ei, s, key, method="longest", walk_threshold=0.5, min_hits=3)
    assert groups(longest) == {frozenset(range(6))}
    assert groups(greedy) == {frozenset({0, 1, 2, 6}), frozenset({3, 4, 5})}


def test_longest_paths_ignore_edge_direction_against_the_order() -> None:
    # Edges stored pointing inwards are turned outwards by the order key: no cycle.
    ei, s = graph([(1, 0), (1, 2), (3, 2), (3, 4)], [0.9] * 4)
    tid = build_tracks(5, ei, s, np.arange(5.0), method="longest", walk_threshold=0.5)
    assert groups(tid) == {frozenset(range(5))}


def test_a_cycle_does_not_hang_the_walk() -> None:
    ei, s = graph([(0, 1), (1, 2), (2, 0), (2, 3)], [0.9] * 4)
    tid = build_tracks(4, ei, s, np.arange(4.0), method="cc_walk", min_hits=2)
    assert groups(tid) == {frozenset({0, 1, 2, 3})}


def test_best_edges_keeps_mutual_best_only() -> None:
    # Node 0 has two successors; node 3 two predecessors.
    ei, s = graph([(0, 1), (0, 2), (1, 3), (2, 3)], [0.9, 0.8, 0.7, 0.95])
    assert best_edges(4, ei, s).tolist() == [True, False, False, True]


def test_connected_components_of_isolated_nodes() -> None:
    labels = connected_components(4, np.zeros((2, 0), np.int64))
    assert sorted(labels.tolist()) == [0, 1, 2, 3]


def test_unknown_method() -> None:
    ei, s = graph([(0, 1)], [0.9])
    with pytest.raises(ConfigError, match="method"):
        build_tracks(2, ei, s, np.zeros(2), method="magic")


# -- stitching split pieces ------------------------------------------------------------------

# One particle, hits 0..9 outwards; its edge 4->5 scores below the cut (0.4 < 0.7), so the
# longest paths build two 5-hit pieces (a duplicate).
SPLIT = [*chain([0, 1, 2, 3, 4]), (4, 5), *chain([5, 6, 7, 8, 9])]
SPLIT_SCORES = [0.9] * 4 + [0.4] + [0.9] * 4


def test_a_split_track_is_stitched() -> None:
    ei, s = graph(SPLIT, SPLIT_SCORES)
    kw = {"method": "longest", "walk_threshold": 0.7, "min_hits": 3}
    plain = build_tracks(10, ei, s, np.arange(10.0), **kw)
    assert groups(plain) == {frozenset(range(5)), frozenset(range(5, 10))}
    for method in METHODS:
        tid = build_tracks(
            10,
            ei,
            s,
            np.arange(10.0),
            **{**kw, "method": method},
            cc_threshold=0.7,
            stitch_threshold=0.3,
            stitch_min_hits=3,
        )
        assert groups(tid) == {frozenset(range(10))}, method
    # The joining edge must reach the stitching cut.
    tid = build_tracks(10, ei, s, np.arange(10.0), **kw, stitch_threshold=0.5)
    assert groups(tid) == groups(plain)


def test_a_split_track_is_stitched_over_a_free_hit() -> None:
    # 0-4 | 4->10 (0.5), 10->5 (0.45) over hit 10, on no track | 5-9.
    edges = [*chain([0, 1, 2, 3, 4]), (4, 10), (10, 5), *chain([5, 6, 7, 8, 9])]
    ei, s = graph(edges, [0.9] * 4 + [0.5, 0.45] + [0.9] * 4)
    key = np.r_[np.arange(10.0), 4.5]
    kw = {"method": "longest", "walk_threshold": 0.7, "min_hits": 3, "stitch_min_hits": 3}
    assert groups(build_tracks(11, ei, s, key, **kw, stitch_threshold=0.4)) == {
        frozenset(range(11))
    }
    # The bridge scores its weaker edge: 0.45 < 0.5, no stitch.
    assert len(groups(build_tracks(11, ei, s, key, **kw, stitch_threshold=0.5))) == 2


def test_two_parallel_tracks_are_not_stitched() -> None:
    # Tracks A: 0-4 and B: 5-9 side by side (same distances from the origin), with weak
    # edges between them: A's last hit to B's first, and across the middle. No end of A
    # lies inside the start of B, so nothing joins; each track stays whole.
    edges = [*chain([0, 1, 2, 3, 4]), *chain([5, 6, 7, 8, 9]), (4, 5), (2, 7), (7, 3)]
    ei, s = graph(edges, [0.9] * 8 + [0.6, 0.6, 0.6])
    key = np.r_[np.arange(5.0), np.arange(5.0) + 0.01]
    tid = build_tracks(
        10, ei, s, key, method="longest", walk_threshold=0.7, min_hits=3, stitch_threshold=0.2
    )
    assert groups(tid) == {frozenset(range(5)), frozenset(range(5, 10))}


def test_each_end_is_continued_once_best_first() -> None:
    # A: 0-4 ends where B: 5-9 (link 0.5) and C: 10-14 (link 0.4) start.
    edges = [*chain([0, 1, 2, 3, 4]), *chain([5, 6, 7, 8, 9]), *chain([10, 11, 12, 13, 14])]
    edges += [(4, 5), (4, 10)]
    ei, s = graph(edges, [0.9] * 12 + [0.5, 0.4])
    key = np.r_[np.arange(5.0), np.arange(5.0) + 5, np.arange(5.0) + 5.01]
    kw = {"method": "longest", "walk_threshold": 0.7, "min_hits": 3, "stitch_threshold": 0.3}
    tid = build_tracks(15, ei, s, key, **kw)
    assert groups(tid) == {frozenset(range(10)), frozenset(range(10, 15))}
    # Ambiguous end: with stitch_unique nothing is joined.
    tid = build_tracks(15, ei, s, key, **kw, stitch_unique=True)
    assert len(groups(tid)) == 3


def test_short_pieces_are_not_stitched_below_stitch_min_hits() -> None:
    # 0-4 | 4->5 (0.5) | 5-6 (2 hits, dissolved by min_hits 3 unless stitched).
    ei, s = graph([*chain([0, 1, 2, 3, 4]), (4, 5), (5, 6)], [0.9] * 4 + [0.5, 0.9])
    kw = {"method": "longest", "walk_threshold": 0.7, "min_hits": 3, "stitch_threshold": 0.3}
    assert groups(build_tracks(7, ei, s, np.arange(7.0), **kw, stitch_min_hits=3)) == {
        frozenset(range(5))
    }
    assert groups(build_tracks(7, ei, s, np.arange(7.0), **kw, stitch_min_hits=2)) == {
        frozenset(range(7))
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [("stitch_threshold", 1.5), ("stitch_threshold", -0.1), ("stitch_min_hits", 0)],
)
def test_bad_stitch_settings(key: str, value: float) -> None:
    ei, s = graph(SPLIT, SPLIT_SCORES)
    with pytest.raises(ConfigError, match=key):
        build_tracks(10, ei, s, np.arange(10.0), method="longest", **{key: value})


@pytest.mark.parametrize("method", METHODS)
def test_second_pass_recovers_a_track_below_the_cut(method: str) -> None:
    # Track A 0..5 scores 0.9 (first pass); track B 10..17 (8 hits) scores 0.5 everywhere
    # (below the cut 0.8), plus a weak edge 2 -> 12 into it; stray pair 20-21 at 0.5.
    edges = [*chain(list(range(6))), *chain(list(range(10, 18))), (2, 12), (20, 21)]
    scores = [0.9] * 5 + [0.5] * 7 + [0.45, 0.5]
    ei, s = graph(edges, scores)
    key = np.arange(22.0) % 10
    kw = {"method": method, "cc_threshold": 0.8, "walk_threshold": 0.8, "min_hits": 3}
    first = build_tracks(22, ei, s, key, **kw)
    assert groups(first) == {frozenset(range(6))}
    tid = build_tracks(22, ei, s, key, **kw, second_threshold=0.3, second_min_hits=8)
    # B is found whole; A keeps its hits (the second pass only sees free hits); the pair
    # is too short for the second pass.
    assert groups(tid) == {frozenset(range(6)), frozenset(range(10, 18))}
    assert len(np.unique(tid[tid >= 0])) == 2 and tid.max() == 1
    # A second pass that needs 9 hits keeps nothing new; a cut above B's scores neither.
    for extra in ({"second_threshold": 0.3, "second_min_hits": 9}, {"second_threshold": 0.6}):
        assert groups(build_tracks(22, ei, s, key, **kw, **extra)) == {frozenset(range(6))}


def test_bad_second_threshold() -> None:
    ei, s = graph(SPLIT, SPLIT_SCORES)
    with pytest.raises(ConfigError, match="second_threshold"):
        build_tracks(10, ei, s, np.arange(10.0), method="longest", second_threshold=2.0)
