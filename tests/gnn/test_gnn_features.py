"""Node features, truth edges (consecutive hits by distance from the vertex), labels,
graph metrics and graph files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gnn_toys import RADII, toy_event

from lhcml.data.event import Event
from lhcml.errors import InputError
from lhcml.gnn.features import (
    CELL_FEATURES,
    EventGraph,
    edge_truth,
    event_nodes,
    feature_names,
    graph_metrics,
    node_features,
    truth_edges,
)
from lhcml.gnn.files import graph_path, list_graphs, load_graph, save_graph


def test_node_features_are_scaled_cylindrical_coordinates() -> None:
    hits = pd.DataFrame({"x": [0.0, 300.0], "y": [100.0, 400.0], "z": [0.0, -500.0]})
    x = node_features(hits)
    np.testing.assert_allclose(x[:, 0], [0.1, 0.5], rtol=1e-6)  # r [m]
    np.testing.assert_allclose(x[:, 1], [0.5, np.arctan2(400, 300) / np.pi], rtol=1e-6)
    np.testing.assert_allclose(x[:, 2], [0.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(x[:, 3], [0.0, np.arcsinh(-1.0)], rtol=1e-6)
    # A model with cluster-shape features still runs on hits without cells: zeros.
    xc = node_features(hits, use_cells=True)
    assert xc.shape == (2, 4 + len(CELL_FEATURES)) and not xc[:, 4:].any()
    assert feature_names(True)[4:] == CELL_FEATURES


def test_truth_edges_join_consecutive_hits_of_each_particle() -> None:
    event = toy_event(5, 20, noise=30)
    edges, pid = truth_edges(event)
    # 20 particles x 5 layers: 4 edges each; noise has none.
    assert edges.shape == (2, 80) and len(pid) == 80
    h = event.hits
    r = np.hypot(h["x"], h["y"]).to_numpy()
    truth_pid = event.truth["particle_id"].to_numpy()
    assert (truth_pid[edges[0]] == pid).all() and (truth_pid[edges[1]] == pid).all()
    # Ordered outwards, one layer at a time.
    steps = np.searchsorted(RADII, r[edges[1]] - 1) - np.searchsorted(RADII, r[edges[0]] - 1)
    assert (steps == 1).all()


def test_truth_order_follows_the_distance_from_the_vertex() -> None:
    # A particle from a displaced vertex at x = 100 mm going inwards: the hit at r = 80 mm
    # is first, r = 40 mm second, although its radius is smaller.
    hits = pd.DataFrame(
        {
            "hit_id": [1, 2, 3],
            "x": [40.0, 80.0, 10.0],
            "y": [0.0, 0.0, 0.0],
            "z": [0.0, 0.0, 0.0],
            "volume_id": 8,
            "layer_id": [2, 4, 2],
            "module_id": 1,
        }
    )
    truth = pd.DataFrame({"hit_id": [1, 2, 3], "particle_id": [7, 7, 7]})
    particles = pd.DataFrame(
        {
            "particle_id": [7],
            "vx": [100.0],
            "vy": [0.0],
            "vz": [0.0],
            "px": [-1.0],
            "py": [0.0],
            "pz": [0.0],
        }
    )
    edges, _ = truth_edges(Event(1, hits, particles=particles, truth=truth))
    assert edges.T.tolist() == [[1, 0], [0, 2]]


def test_edge_labels_and_graph_metrics_by_hand() -> None:
    # Truth: 0-1-2 (target particle) and 3-4 (non-target). Graph: 5 edges.
    truth = np.array([[0, 1, 3], [1, 2, 4]])
    truth_target = np.array([True, True, False])
    edges = np.array([[0, 2, 3, 0, 1], [1, 1, 4, 2, 3]])  # 2->1 is 1->2 reversed
    y, target = edge_truth(edges, truth, truth_target, 5)
    assert y.tolist() == [True, True, True, False, False]
    assert target.tolist() == [True, True, False, False, False]
    g = EventGraph(
        event_id=1,
        hit_id=np.arange(1, 6),
        x=np.zeros((5, 4), np.float32),
        edge_index=edges,
        y=y,
        target=target,
        truth_edge_index=truth,
        truth_target=truth_target,
    )
    m = graph_metrics([g])
    assert (m["efficiency"], m["purity"], m["target_purity"]) == (1.0, 3 / 5, 2 / 5)
    m = graph_metrics([g], [np.array([True, False, True, True, True])])
    assert (m["efficiency"], m["purity"], m["edges_per_event"]) == (0.5, 2 / 4, 4)


def test_event_nodes_targets_follow_the_selection() -> None:
    event = toy_event(6, 30)
    g = event_nodes(event)
    assert g.n_nodes == len(event.hits) and g.n_edges == 0
    pt = np.hypot(event.particles["px"], event.particles["py"]).to_numpy()
    assert g.truth_target is not None and g.truth_target.sum() == 4 * int((pt >= 1.0).sum())
    from lhcml.metrics.tracking import FiducialSelection

    g3 = event_nodes(event, target=FiducialSelection(pt_min=3.0))
    assert g3.truth_target is not None and g3.truth_target.sum() == 4 * int((pt >= 3.0).sum())
    # Each hit carries its particle's pT (0 for noise) for pT-weighted losses.
    truth = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"])
    by_pid = dict(zip(event.particles["particle_id"], pt, strict=True))
    want = [by_pid.get(p, 0.0) for p in truth.fillna(0).astype(int)]
    assert g.particle_pt is not None and g.particle_vz is not None
    np.testing.assert_allclose(g.particle_pt, want, rtol=1e-6)
    vz = dict(zip(event.particles["particle_id"], event.particles["vz"], strict=True))
    np.testing.assert_allclose(
        g.particle_vz, [vz.get(p, 0.0) for p in truth.fillna(0).astype(int)], atol=1e-4
    )
    no_truth = Event(6, event.hits)
    assert event_nodes(no_truth).truth_edge_index is None
    assert event_nodes(no_truth).particle_pt is None
    with pytest.raises(InputError, match="no truth"):
        truth_edges(no_truth)


def test_graph_files_round_trip_weights_only(tmp_path) -> None:
    event = toy_event(7, 10)
    g = event_nodes(event)
    g.edge_index = np.array([[0, 1], [1, 2]])
    g.scores = np.array([0.2, 0.9], np.float32)
    g.relabel()
    path = save_graph(g, tmp_path)
    assert path == graph_path(tmp_path, 7) and path.name == "event000000007-graph.pt"
    blob = torch.load(path, weights_only=True)
    assert set(blob) >= {"hit_id", "x", "edge_index", "scores", "y", "target"}
    back = load_graph(path)
    assert back.particle_pt is not None and g.particle_pt is not None
    np.testing.assert_array_equal(back.particle_pt, g.particle_pt)
    np.testing.assert_array_equal(back.edge_index, g.edge_index)
    np.testing.assert_array_equal(back.scores, g.scores)
    assert back.event_id == 7 and back.has_truth
    assert list_graphs(tmp_path) == [path]
    with pytest.raises(InputError, match="not found"):
        list_graphs(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no event"):
        list_graphs(tmp_path / "empty")
    (tmp_path / "event000000008-graph.pt").write_text("garbage")
    with pytest.raises(InputError, match="not a graph file"):
        load_graph(tmp_path / "event000000008-graph.pt")
