"""Widen a trained Interaction Network without changing what it computes (Net2WiderNet).

From `"Net2Net: Accelerating Learning via Knowledge Transfer"
<https://arxiv.org/abs/1511.05641>`_ (Chen, Goodfellow, Shlens, 2016). Every hidden channel
of the node and edge states and of the MLPs is copied ``factor`` times (new channel ``i``
is old channel ``i mod hidden``); a linear layer reading copied channels divides their
weights by ``factor``. Copying every channel the same number of times keeps the mean and
variance that LayerNorm takes over the channels, so the wider network gives the same
logits. A little noise on the weights then lets the copies learn different things (exact
copies would get equal gradients forever).

Why: on a CPU a wide network trained from scratch needs more steps than we can give it;
starting from the trained narrow one keeps all its training.
"""

from __future__ import annotations

import torch
from torch import nn

from lhcml.errors import ConfigError
from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork

# An input block of a linear layer: (width, whether it is a hidden-state block).
_Block = tuple[int, bool]


def _widen_linear(
    old: nn.Linear, new: nn.Linear, blocks: list[_Block], hidden_out: bool, factor: int
) -> None:
    rows = old.weight
    if hidden_out:
        rows = rows.repeat(factor, 1)
    cols = []
    start = 0
    for width, hidden in blocks:
        block = rows[:, start : start + width]
        cols.append(block.repeat(1, factor) / factor if hidden else block)
        start += width
    if start != old.in_features:
        raise ValueError(f"input blocks cover {start} of {old.in_features} features")
    new.weight.copy_(torch.cat(cols, dim=1))
    new.bias.copy_(old.bias.repeat(factor) if hidden_out else old.bias)


def _widen_mlp(
    old: nn.Sequential, new: nn.Sequential, first: list[_Block], hidden: int, factor: int
) -> None:
    """An MLP of :func:`lhcml.gnn.mlp.make_mlp`: hidden widths everywhere but the input
    blocks ``first`` and a last layer narrower than ``hidden`` (an output head)."""
    blocks = first
    for o, n in zip(old, new, strict=True):
        if isinstance(o, nn.Linear):
            assert isinstance(n, nn.Linear)
            hidden_out = o.out_features == hidden
            _widen_linear(o, n, blocks, hidden_out, factor)
            blocks = [(hidden, True)]
        elif isinstance(o, nn.LayerNorm):
            assert isinstance(n, nn.LayerNorm)
            n.weight.copy_(o.weight.repeat(factor))
            n.bias.copy_(o.bias.repeat(factor))


@torch.no_grad()
def widen(
    model: InteractionNetwork, factor: int = 2, noise: float = 0.0, seed: int = 0
) -> InteractionNetwork:
    """A copy of ``model`` with ``factor`` times the hidden width and the same logits.

    Args:
        model: a trained network.
        factor: width multiplier (an integer >= 1).
        noise: standard deviation of the noise added to every weight matrix, relative to
            that matrix's own standard deviation (``0``: the logits are unchanged).
        seed: noise seed.

    Returns:
        The wider network (``hidden * factor``), in eval mode, on the CPU.

    Raises:
        ConfigError: ``factor`` is not a positive integer, or ``noise`` is negative.
    """
    if int(factor) != factor or factor < 1:
        raise ConfigError(f"widen: factor must be a positive integer, got {factor}")
    if noise < 0:
        raise ConfigError(f"widen: noise must be >= 0, got {noise}")
    factor = int(factor)
    old = model.cpu()
    hidden = old.node_encoder[0].out_features
    n_layers = sum(isinstance(m, nn.Linear) for m in old.node_encoder)
    n_node = old.node_encoder[0].in_features
    n_edge = old.edge_encoder[0].in_features - 2 * hidden
    layer_norm = any(isinstance(m, nn.LayerNorm) for m in old.node_encoder)
    new = InteractionNetwork(
        n_node_features=n_node,
        hidden=hidden * factor,
        n_iterations=old.n_iterations,
        n_layers=n_layers,
        shared_weights=len(old.convs) == 1 and old.n_iterations > 1,
        layer_norm=layer_norm,
        checkpointing=old.checkpointing,
    )
    new.node_norm.load_state_dict(old.node_norm.state_dict())
    new.edge_norm.load_state_dict(old.edge_norm.state_dict())
    h = (hidden, True)
    _widen_mlp(old.node_encoder, new.node_encoder, [(n_node, False)], hidden, factor)
    _widen_mlp(old.edge_encoder, new.edge_encoder, [h, h, (n_edge, False)], hidden, factor)
    for o, n in zip(old.convs, new.convs, strict=True):
        _widen_mlp(o.edge_mlp, n.edge_mlp, [h, h, h], hidden, factor)
        _widen_mlp(o.node_mlp, n.node_mlp, [h, h, h], hidden, factor)
    _widen_mlp(old.head, new.head, [h, h, h], hidden, factor)
    if noise > 0:
        gen = torch.Generator().manual_seed(seed)
        for m in new.modules():
            if isinstance(m, nn.Linear):
                w = m.weight
                w.add_(torch.randn(w.shape, generator=gen) * noise * w.std())
    new.fused = old.fused
    return new.eval()
