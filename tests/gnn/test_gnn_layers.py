"""The networks on tiny graphs: shapes, permutation equivariance, receptive field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lhcml.gnn.edge_classification.interaction_network import InteractionConv, InteractionNetwork
from lhcml.gnn.edge_filter import EdgeFilter
from lhcml.gnn.features import EDGE_FEATURES, edge_features
from lhcml.gnn.graph_construction.metric_learning import MetricLearning, hinge_loss


def tiny_graph(
    n: int = 7, e: int = 12, f: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=g)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    return x, edge_index


def permute(
    x: torch.Tensor, edge_index: torch.Tensor, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Relabel nodes and shuffle edges; returns new graph and the two permutations."""
    g = torch.Generator().manual_seed(seed)
    node_perm = torch.randperm(x.shape[0], generator=g)  # new node i is old node_perm[i]
    inverse = torch.empty_like(node_perm)
    inverse[node_perm] = torch.arange(len(node_perm))
    edge_perm = torch.randperm(edge_index.shape[1], generator=g)
    return x[node_perm], inverse[edge_index][:, edge_perm], node_perm, edge_perm


def test_interaction_conv_shapes_and_node_equivariance() -> None:
    torch.manual_seed(0)
    conv = InteractionConv(hidden=8).eval()
    h, ei = tiny_graph(f=8)
    e = torch.rand(ei.shape[1], 8)
    h2, e2 = conv(h, ei, e)
    assert h2.shape == (7, 8) and e2.shape == (12, 8)
    hp, eip, node_perm, edge_perm = permute(h, ei)
    hp2, ep2 = conv(hp, eip, e[edge_perm])
    torch.testing.assert_close(hp2, h2[node_perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ep2, e2[edge_perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shared", [False, True])
def test_interaction_network_is_permutation_equivariant(shared: bool) -> None:
    torch.manual_seed(0)
    net = InteractionNetwork(n_node_features=4, hidden=8, n_iterations=3, shared_weights=shared)
    net.eval()
    x, ei = tiny_graph()
    out = net(x, ei)
    assert out.shape == (12,)
    xp, eip, _, edge_perm = permute(x, ei)
    torch.testing.assert_close(net(xp, eip), out[edge_perm], rtol=1e-5, atol=1e-5)
    n_convs = len(net.convs)
    assert n_convs == (1 if shared else 3)


def test_interaction_network_sees_as_far_as_its_iterations() -> None:
    # On a chain 0->1->...->7, after k iterations edge 0->1 depends on nodes 0..k+1 only.
    x = torch.rand(8, 4, dtype=torch.float64)
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])
    for k in (1, 3):
        torch.manual_seed(0)
        net = InteractionNetwork(hidden=8, n_iterations=k).double().eval()
        base = net(x, ei)[0]
        for node in range(8):
            bumped = x.clone()
            bumped[node] += 1.0
            changed = not torch.equal(net(bumped, ei)[0], base)
            assert changed == (node <= k + 1), (k, node)


def test_interaction_network_distinguishes_edge_direction() -> None:
    torch.manual_seed(0)
    net = InteractionNetwork(hidden=8, n_iterations=2).eval()
    x, ei = tiny_graph()
    assert not torch.allclose(net(x, ei), net(x, ei.flip(0)))


def test_interaction_network_trains_on_a_toy_task() -> None:
    # Label: the edge goes outwards in r (feature 0). A few steps must learn it.
    torch.manual_seed(0)
    x = torch.rand(60, 4)
    ei = torch.randint(0, 60, (2, 300))
    y = (x[ei[1], 0] > x[ei[0], 0]).float()
    net = InteractionNetwork(hidden=16, n_iterations=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x, ei), y)
        loss.backward()
        opt.step()
    accuracy = ((net(x, ei) > 0).float() == y).float().mean().item()
    assert accuracy > 0.9


def test_edge_filter_shapes_batches_and_equivariance() -> None:
    torch.manual_seed(0)
    f = EdgeFilter(n_node_features=4, hidden=8).eval()
    x, ei = tiny_graph()
    out = f(x, ei)
    assert out.shape == (12,)
    torch.testing.assert_close(f.scores(x, ei, batch_size=5), torch.sigmoid(out))
    xp, eip, _, edge_perm = permute(x, ei)
    torch.testing.assert_close(f(xp, eip), out[edge_perm], rtol=1e-5, atol=1e-5)


def test_metric_learning_embedding_is_per_hit() -> None:
    torch.manual_seed(0)
    m = MetricLearning(n_node_features=4, hidden=8, emb_dim=3, normalize=True).eval()
    x = torch.rand(5, 4)
    emb = m(x)
    assert emb.shape == (5, 3)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(m(x[[4, 3, 2, 1, 0]]), emb[[4, 3, 2, 1, 0]])


def test_hinge_loss_by_hand() -> None:
    emb = torch.tensor([[0.0, 0.0], [0.3, 0.4], [0.0, 0.05]])
    pairs = torch.tensor([[0, 0], [1, 2]])
    # True pair (0,1): d^2 = 0.25; false pair (0,2): d^2 = 0.0025, margin 0.1 -> 0.0075.
    loss = hinge_loss(emb, pairs, torch.tensor([True, False]), margin=0.1, pos_weight=2.0)
    assert loss.item() == pytest.approx(2 * 0.25 + (0.01 - 0.0025))


def test_edge_features_by_hand() -> None:
    # Two hits at phi = +-(pi - 0.01): dphi must wrap to 0.02 rad, not ~2 pi.
    x = torch.tensor(
        [[0.1, (np.pi - 0.01) / np.pi, 0.0, 0.0], [0.2, (-np.pi + 0.01) / np.pi, 0.1, 0.5]]
    )
    feats = edge_features(x, torch.tensor([[0], [1]]))
    assert feats.shape == (1, len(EDGE_FEATURES))
    dr, dphi, dz, deta, phi_slope, rphi_slope, z0 = feats[0].tolist()
    assert dr == pytest.approx(0.1)
    assert dphi * np.pi == pytest.approx(0.02, abs=1e-5)
    assert dz == pytest.approx(0.1) and deta == pytest.approx(0.5)
    assert phi_slope == pytest.approx(dphi / 0.1, rel=1e-5)
    assert rphi_slope == pytest.approx(0.15 * dphi / 0.1, rel=1e-5)
    assert z0 == pytest.approx(0.0 - 0.1 * 0.1 / 0.1, rel=1e-5)  # z1 - r1 dz / dr
