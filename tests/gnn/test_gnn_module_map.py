"""Module map: building from truth, vectorised application against a brute-force loop,
module renumbering through centres."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from gnn_toys import toy_event

from lhcml.errors import ConfigError, InputError
from lhcml.gnn.features import event_nodes, graph_metrics
from lhcml.gnn.graph_construction.module_map import (
    VARIABLES,
    ModuleMap,
    doublet_variables,
    module_keys,
    translate_modules,
)


@pytest.fixture(scope="module")
def module_map(toy_events: list) -> ModuleMap:
    return ModuleMap(pt_min=0.9).fit(toy_events)


def brute_force_edges(mm: ModuleMap, hits: pd.DataFrame) -> set[tuple[int, int]]:
    """Every hit pair of every module pair, cut one by one (the definition)."""
    keys = module_keys(hits)
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    windows = mm.windows()
    assert mm.table is not None
    edges = set()
    for p, (m1, m2) in enumerate(zip(mm.table["m1"], mm.table["m2"], strict=True)):
        for a in np.flatnonzero(keys == m1):
            for b in np.flatnonzero(keys == m2):
                var = doublet_variables(r[[a]], phi[[a]], z[[a]], r[[b]], phi[[b]], z[[b]])
                if all(windows[v][0][p] <= var[v][0] <= windows[v][1][p] for v in VARIABLES):
                    edges.add((int(a), int(b)))
    return edges


def test_map_holds_the_module_pairs_of_consecutive_hits(toy_events: list) -> None:
    mm = ModuleMap(pt_min=0.9).fit(toy_events[:1])
    event = toy_events[0]
    h = event.hits_with_truth()
    keys = module_keys(h)
    # Hand count: each particle's hits sorted by radius give 4 consecutive module pairs.
    expected = set()
    for _, g in h.assign(key=keys, r=np.hypot(h.x, h.y)).groupby("particle_id"):
        k = g.sort_values("r")["key"].to_numpy()
        expected |= set(itertools.pairwise(k))
    assert mm.table is not None
    assert set(zip(mm.table["m1"], mm.table["m2"], strict=True)) == expected
    assert mm.table["count"].sum() == 4 * 60


def test_vectorised_edges_equal_the_brute_force_loop(module_map: ModuleMap) -> None:
    # Noise hits and tracks near phi = +-pi exercise the azimuth runs and the wrap.
    event = toy_event(1000, 80, noise=150)
    edges = module_map.build_edges(event.hits)
    got = set(zip(edges[0].tolist(), edges[1].tolist(), strict=True))
    assert len(got) == edges.shape[1]  # no duplicates
    assert got == brute_force_edges(module_map, event.hits)
    assert len(got) > 300


def test_small_chunks_give_the_same_edges(module_map: ModuleMap, tmp_path) -> None:
    event = toy_event(1001, 60, noise=50)
    path = module_map.save(tmp_path / "mm.parquet")
    small = ModuleMap.load(path, chunk=7)
    a = module_map.build_edges(event.hits, engine="numpy")
    b = small.build_edges(event.hits, engine="numpy")
    assert sorted(map(tuple, a.T.tolist())) == sorted(map(tuple, b.T.tolist()))


def test_numba_and_numpy_engines_give_the_same_edges_in_order(
    module_map: ModuleMap, trackml_prefix
) -> None:
    # The toy map on a toy event (wrapping windows), and the shipped map on the shared
    # real TrackML event (translated module ids; ~4k edges): equal arrays, same order.
    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import read_detectors, read_event

    event = toy_event(1002, 80, noise=150)
    a = module_map.build_edges(event.hits, engine="numba")
    assert a.shape[1] > 300
    np.testing.assert_array_equal(a, module_map.build_edges(event.hits, engine="numpy"))
    chain = GNNChain()
    real = read_event(trackml_prefix, parts=["hits"])
    det = read_detectors(trackml_prefix.parent / "detectors.csv.gz")
    hits = translate_modules(real.hits, det, chain.centres)
    b = chain.module_map.build_edges(hits)
    assert b.shape[1] > 3_000
    np.testing.assert_array_equal(b, chain.module_map.build_edges(hits, engine="numpy"))
    with pytest.raises(ConfigError, match="engine 'loop'"):
        chain.module_map.build_edges(hits, engine="loop")


def test_pairs_in_both_orders_give_each_hit_pair_once(module_map: ModuleMap) -> None:
    # A map holding each pair in both orders (wide windows) finds every hit pair twice:
    # the edges are deduplicated (first found kept), as without the reversed pairs.
    import copy

    assert not module_map._pairs_can_repeat()  # the toy map: one order per pair
    both = copy.copy(module_map)
    t = module_map.table
    assert t is not None
    rev = t.rename(columns={"m1": "m2", "m2": "m1"})
    wide = {f"{v}_{e}": (-1e9 if e == "min" else 1e9) for v in VARIABLES for e in ("min", "max")}
    both.table = pd.concat([t.assign(**wide), rev.assign(**wide)], ignore_index=True)
    assert both._pairs_can_repeat()
    event = toy_event(1003, 20)
    edges = both.build_edges(event.hits)
    keys = np.minimum(edges[0], edges[1]) * len(event.hits) + np.maximum(edges[0], edges[1])
    assert len(np.unique(keys)) == edges.shape[1] > 100
    np.testing.assert_array_equal(edges, both.build_edges(event.hits, engine="numpy"))
    forward = copy.copy(module_map)
    forward.table = t.assign(**wide)
    ref = forward.build_edges(event.hits)
    assert {tuple(sorted(e)) for e in edges.T.tolist()} == {
        tuple(sorted(e)) for e in ref.T.tolist()
    }


def test_efficiency_on_new_events_and_wider_windows(module_map: ModuleMap, tmp_path) -> None:
    events = [toy_event(2000 + i, 60) for i in range(5)]
    path = module_map.save(tmp_path / "mm.parquet")
    results = {}
    for margin in (0.0, 0.5):
        mm = ModuleMap.load(path, margin=margin, pad_z0=0, pad_dphi=0, pad_phi_slope=0, pad_deta=0)
        graphs = []
        for ev in events:
            g = event_nodes(ev)
            g.edge_index = mm.build_edges(ev.hits)
            g.relabel()
            graphs.append(g)
        results[margin] = graph_metrics(graphs)
    # Wider windows: more true edges kept, more edges in all.
    assert results[0.5]["efficiency"] > results[0.0]["efficiency"] > 0.8
    assert results[0.5]["edges_per_event"] > results[0.0]["edges_per_event"]
    assert results[0.5]["efficiency"] > 0.93  # the rest: module pairs never seen in training


def test_count_scaled_margin_widens_rare_pairs_more(module_map: ModuleMap, tmp_path) -> None:
    """``margin_count``: each window widened by min(margin, k / sqrt(count)) of its width,
    by hand for pairs of different counts; a pair seen often gets the narrower window."""
    path = module_map.save(tmp_path / "mm.parquet")
    pads = {"pad_z0": 0, "pad_dphi": 0, "pad_phi_slope": 0, "pad_deta": 0}
    plain = ModuleMap.load(path, margin=0.0, **pads).windows()
    scaled = ModuleMap.load(path, margin=0.4, margin_count=0.8, **pads).windows()
    count = module_map.table["count"].to_numpy(np.float64)
    assert count.min() < 4 < count.max()  # both regimes below
    expected = np.minimum(0.4, 0.8 / np.sqrt(count))  # 0.4 up to 4 doublets, then 0.8/sqrt(n)
    for v in VARIABLES:
        lo, hi = plain[v]
        np.testing.assert_allclose(scaled[v][0], lo - expected * (hi - lo))
        np.testing.assert_allclose(scaled[v][1], hi + expected * (hi - lo))
    # The windows are kept between calls, and computed again when a setting changes.
    mm = ModuleMap.load(path, margin=0.0, **pads)
    assert mm.windows() is mm.windows()
    mm.config["margin"] = 0.5
    lo, hi = plain["z0"]
    np.testing.assert_allclose(mm.windows()["z0"][1], hi + 0.5 * (hi - lo))
    # The saved config carries the setting; a map without it keeps the uniform margin.
    assert ModuleMap.load(path, margin_count=0.8).config["margin_count"] == 0.8
    assert ModuleMap.load(path).config["margin_count"] is None
    with pytest.raises(ConfigError, match="margin_count"):
        ModuleMap(margin_count=0.0)


def test_save_load_round_trip(module_map: ModuleMap, tmp_path) -> None:
    path = module_map.save(tmp_path / "mm.parquet")
    loaded = ModuleMap.load(path)
    assert loaded.n_events == module_map.n_events == 30
    assert loaded.config == module_map.config
    event = toy_event(3000, 30)
    np.testing.assert_array_equal(
        loaded.build_edges(event.hits), module_map.build_edges(event.hits)
    )
    with pytest.raises(InputError, match="not found"):
        ModuleMap.load(tmp_path / "missing.parquet")
    (tmp_path / "bad.parquet").write_text("nope")
    with pytest.raises(InputError, match="not a module map"):
        ModuleMap.load(tmp_path / "bad.parquet")


def test_unfitted_map_and_bad_settings() -> None:
    with pytest.raises(ConfigError, match="not built"):
        ModuleMap().build_edges(toy_event(1, 3).hits)
    with pytest.raises(ConfigError):
        ModuleMap(min_count=0)


def test_translate_modules_through_centres() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {
            "volume_id": 7,
            "layer_id": 2,
            "module_id": np.arange(1, 11),
            "cx": rng.uniform(-100, 100, 10),
            "cy": rng.uniform(-100, 100, 10),
            "cz": -1500.0,
        }
    )
    perm = rng.permutation(10)
    # The event's detector numbers the same modules in another order.
    det = ref.iloc[perm].assign(module_id=np.arange(1, 11)).reset_index(drop=True)
    hits = pd.DataFrame({"volume_id": [7, 7, 7], "layer_id": [2, 2, 2], "module_id": [1, 5, 10]})
    out = translate_modules(hits, det, ref)
    assert out["module_id"].tolist() == [perm[0] + 1, perm[4] + 1, perm[9] + 1]
    moved = det.assign(cx=det["cx"] + 5.0)
    with pytest.raises(InputError, match="same detector"):
        translate_modules(hits, moved, ref)


def _with_displaced(event, share: float = 0.5, seed: int = 0):
    """The event with a share of its particles marked as displaced decays (made at
    r = 40 mm, not primary), and one displaced particle made beyond 300 mm."""
    import dataclasses

    rng = np.random.default_rng(seed)
    p = event.particles.copy()
    displaced = rng.random(len(p)) < share
    p["primary"] = ~displaced
    p["prod_r"] = np.where(displaced, 40.0, 0.0).astype(np.float32)
    p.loc[np.flatnonzero(displaced)[0], "prod_r"] = 500.0
    return dataclasses.replace(event, particles=p)


def test_extend_adds_the_new_particles_once(toy_events: list) -> None:
    events = [_with_displaced(e, seed=i) for i, e in enumerate(toy_events[:3])]
    wide = {"primary_only": False, "max_prod_r": 300.0}
    prim = ModuleMap(pt_min=0.9).fit(events)
    direct = ModuleMap(pt_min=0.9, **wide).fit(events)
    # The same events again: primaries are not counted twice, so fit + extend equals a
    # fit with the wider selection, counts and extremes.
    extended = ModuleMap(pt_min=0.9).fit(events).extend(events, **wide)
    assert extended.config["primary_only"] is False and extended.config["max_prod_r"] == 300
    a, b = direct.table, extended.table
    assert a is not None and b is not None and prim.table is not None
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # Hand count: 4 doublets per selected particle (5 layers), the one beyond 300 mm not.
    n_sel = sum(int((e.particles["prod_r"] <= 300).sum()) for e in events)
    assert b["count"].sum() == 4 * n_sel
    assert b["count"].sum() > prim.table["count"].sum()
    # Extending with what the map already selects adds nothing.
    again = ModuleMap(pt_min=0.9, **wide).fit(events).extend(events, **wide)
    pd.testing.assert_frame_equal(again.table, a, check_dtype=False)


def test_extend_refuses_other_settings_and_no_events(toy_events: list) -> None:
    mm = ModuleMap(pt_min=0.9).fit(toy_events[:1])
    with pytest.raises(ConfigError, match="margin"):
        mm.extend(toy_events[:1], margin=0.1)
    with pytest.raises(InputError, match="no events"):
        mm.extend([], primary_only=False)
    with pytest.raises(ConfigError, match="not built"):
        ModuleMap().extend(toy_events[:1], primary_only=False)


def test_module_map_extend_rewrites_the_map_file(toy_events: list, tmp_path) -> None:
    import dataclasses

    from lhcml.gnn.graph_construction.train import module_map_extend
    from lhcml.io import write_event

    events = [
        dataclasses.replace(_with_displaced(e, seed=i), event_id=i)
        for i, e in enumerate(toy_events[:2])
    ]
    src = tmp_path / "events"
    for e in events:
        write_event(e, src)
    ModuleMap(pt_min=0.9).fit(events).save(tmp_path / "map" / "module_map.parquet")
    wide = {"primary_only": False, "max_prod_r": 300.0}
    out = module_map_extend(tmp_path / "map", [src], wide, progress=False)
    assert out["events"] == 2 and out["module_pairs"] >= out["module_pairs_before"]
    loaded = ModuleMap.load(tmp_path / "map" / "module_map.parquet")
    assert loaded.config["primary_only"] is False and loaded.n_events == 4
    direct = ModuleMap(pt_min=0.9, **wide).fit(events)
    pd.testing.assert_frame_equal(loaded.table, direct.table, check_dtype=False)
