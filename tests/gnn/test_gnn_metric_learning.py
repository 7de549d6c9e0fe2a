"""Metric learning: faiss radius graph against brute force, training pairs, a short fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gnn_toys import toy_event

from lhcml.errors import ConfigError
from lhcml.gnn.features import distance_key, event_nodes, graph_metrics
from lhcml.gnn.graph_construction.metric_learning import (
    MetricLearning,
    embed,
    hinge_loss,
    knn_pairs,
    radius_graph,
    training_pairs,
)


def brute_radius(emb: np.ndarray, r: float, key: np.ndarray) -> set[tuple[int, int]]:
    d2 = ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)
    out = set()
    for a, b in zip(*np.nonzero(d2 < r**2), strict=True):
        if a == b:
            continue
        src, dst = (a, b) if (key[a], a) < (key[b], b) else (b, a)
        out.add((int(src), int(dst)))
    return out


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_radius_graph_equals_brute_force(index: str) -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 3)).astype(np.float32)
    key = rng.uniform(size=500)
    edges = radius_graph(emb, 0.3, k_max=500, order_key=key, index=index)
    got = set(zip(edges[0].tolist(), edges[1].tolist(), strict=True))
    assert got == brute_radius(emb, 0.3, key)  # small inputs use the exact index
    assert (key[edges[0]] <= key[edges[1]]).all()


def test_ivf_index_finds_nearly_all_neighbours() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(5_000, 3)).astype(np.float32)
    exact, _ = knn_pairs(emb, 5, index="flat")
    approx, _ = knn_pairs(emb, 5, index="ivf", nprobe=16, min_ivf=0)
    e = set(map(tuple, exact.T.tolist()))
    a = set(map(tuple, approx.T.tolist()))
    assert len(e & a) / len(e) > 0.95


def test_k_max_caps_the_neighbours() -> None:
    emb = np.zeros((20, 2), np.float32)  # all at one point: everyone is a neighbour
    pairs, dist2 = knn_pairs(emb, 3, r_max=1.0, index="flat")
    assert pairs.shape == (2, 60) and (dist2 == 0).all()
    assert (np.bincount(pairs[0]) == 3).all()
    with pytest.raises(ConfigError, match="index"):
        knn_pairs(np.zeros((30_000, 2), np.float32), 3, index="annoy")


def test_training_pairs_are_labelled_by_particle() -> None:
    rng = np.random.default_rng(2)
    pid = np.array([1, 1, 1, 2, 2, 0, 0])
    truth = np.array([[0, 1, 3], [1, 2, 4]])
    emb = rng.normal(size=(7, 2)).astype(np.float32)
    pairs, label = training_pairs(
        emb,
        truth,
        np.array([True, True, False]),
        pid,
        n_random=50,
        k_hard=3,
        r_hard=10.0,
        n_hard_queries=7,
        rng=rng,
    )
    assert (pairs[0] != pairs[1]).all()
    expected = (pid[pairs[0]] == pid[pairs[1]]) & (pid[pairs[0]] != 0)
    np.testing.assert_array_equal(label, expected)
    # The target truth edges come first, as positives; the non-target one is not forced in.
    assert pairs[:, :2].T.tolist() == [[0, 1], [1, 2]] and label[:2].all()


def test_a_short_fit_raises_graph_efficiency() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train = [event_nodes(toy_event(i, 40)) for i in range(3)]
    test = event_nodes(toy_event(99, 40))
    model = MetricLearning(n_node_features=4, hidden=32, n_layers=3, emb_dim=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def efficiency() -> float:
        test.edge_index = radius_graph(
            embed(model, test.x), 0.2, 20, distance_key(test.x), index="flat"
        )
        test.relabel()
        return graph_metrics([test])["efficiency"]

    before = efficiency()
    model.train()
    for _ in range(25):
        for g in train:
            emb = model(torch.from_numpy(g.x))
            pairs, label = training_pairs(
                emb.detach().numpy(),
                g.truth_edge_index,
                g.truth_target,
                g.particle_id,
                n_random=1000,
                k_hard=5,
                r_hard=0.2,
                n_hard_queries=50,
                rng=rng,
            )
            loss = hinge_loss(emb, torch.from_numpy(pairs), torch.from_numpy(label), 0.2)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = efficiency()
    assert after > max(before, 0.5)
