"""Net2WiderNet widening of the Interaction Network keeps its logits (lhcml.gnn.edge_classification.widen)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gnn_toys import random_graph

from lhcml.errors import ConfigError
from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
from lhcml.gnn.edge_classification.train import init_weights
from lhcml.gnn.edge_classification.widen import widen
from lhcml.gnn.files import save_model


def trained_like(**kw: object) -> InteractionNetwork:
    """A network with non-trivial weights everywhere (LayerNorm affine included)."""
    torch.manual_seed(0)
    net = InteractionNetwork(**kw).eval()  # type: ignore[arg-type]
    for p in net.parameters():
        p.data += 0.3 * torch.randn_like(p)
    net.node_norm.centre += 0.2
    net.edge_norm.scale *= 1.5
    return net


def graph() -> tuple[torch.Tensor, torch.Tensor]:
    return random_graph(50, 200, seed=3)


@pytest.mark.parametrize(
    ("layer_norm", "shared", "n_layers", "factor"),
    [(True, False, 2, 2), (True, False, 3, 3), (False, True, 2, 2), (True, False, 1, 4)],
)
def test_widened_network_gives_the_same_logits(
    layer_norm: bool, shared: bool, n_layers: int, factor: int
) -> None:
    net = trained_like(
        hidden=8, n_iterations=3, n_layers=n_layers, layer_norm=layer_norm, shared_weights=shared
    )
    wide = widen(net, factor)
    assert wide.node_encoder[0].out_features == 8 * factor
    assert len(wide.convs) == len(net.convs)
    x, ei = graph()
    with torch.no_grad():
        ref = net(x, ei)
        out = wide(x, ei)  # fused CPU path
        wide.fused = False
        out_torch = wide(x, ei)
    assert ref.std() > 0.01  # not a degenerate comparison
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out_torch, ref, rtol=1e-4, atol=1e-4)


def test_noise_breaks_the_copies_apart_a_little() -> None:
    net = trained_like(hidden=8, n_iterations=2)
    x, ei = graph()
    with torch.no_grad():
        ref = torch.sigmoid(net(x, ei))
        a = widen(net, 2, noise=0.01, seed=1)
        b = widen(net, 2, noise=0.01, seed=1)
        noisy = torch.sigmoid(a(x, ei))
    w = a.convs[0].edge_mlp[0].weight
    # Channel i and its copy i + 8 no longer have equal weights...
    assert not torch.equal(w[:8], w[8:])
    # ...but the scores move little, and the same seed gives the same network.
    assert 0 < (noisy - ref).abs().mean() < 0.02
    torch.testing.assert_close(a.state_dict(), b.state_dict())


def test_widened_copies_learn_apart_only_with_noise() -> None:
    net = trained_like(hidden=4, n_iterations=1)
    x, ei = graph()
    y = (torch.rand(ei.shape[1], generator=torch.Generator().manual_seed(5)) > 0.5).float()
    for noise, apart in ((0.0, False), (0.01, True)):
        wide = widen(net, 2, noise=noise).train()
        opt = torch.optim.SGD(wide.parameters(), lr=0.1)
        for _ in range(3):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(wide(x, ei), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        w = wide.node_encoder[0].weight.detach()
        gap = (w[:4] - w[4:]).abs().max().item()
        assert (gap > 1e-4) is apart


def test_bad_factor_and_noise() -> None:
    net = InteractionNetwork(hidden=4, n_iterations=1)
    with pytest.raises(ConfigError, match="factor"):
        widen(net, 0)
    with pytest.raises(ConfigError, match="factor"):
        widen(net, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="noise"):
        widen(net, 2, noise=-1.0)


def test_init_from_with_init_widen(tmp_path: Path) -> None:
    small = {"n_node_features": 4, "hidden": 8, "n_iterations": 2}
    net = trained_like(**small)
    save_model(tmp_path / "ec.pt", net, small)
    big = {**small, "hidden": 16}
    target = InteractionNetwork(**big)
    init_weights(target, big, tmp_path / "ec.pt", "edge_classifier.init_from", widen={"factor": 2})
    x, ei = graph()
    with torch.no_grad():
        torch.testing.assert_close(target.eval()(x, ei), net(x, ei), rtol=1e-4, atol=1e-4)
    # The widened width must be the configured one...
    with pytest.raises(ConfigError, match=r"edge_classifier\.init_from.*hidden"):
        init_weights(
            InteractionNetwork(**{**small, "hidden": 24}),
            {**small, "hidden": 24},
            tmp_path / "ec.pt",
            "edge_classifier.init_from",
            widen={"factor": 2},
        )
    # ...and the settings are widen()'s arguments.
    with pytest.raises(ConfigError, match=r"init_widen: unknown key\(s\) \['times'\]"):
        init_weights(
            target, big, tmp_path / "ec.pt", "edge_classifier.init_from", widen={"times": 2}
        )
