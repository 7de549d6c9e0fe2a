"""The multilayer perceptron every GNN stage is made of."""

from __future__ import annotations

from torch import Tensor, nn


def make_mlp(
    n_in: int,
    hidden: int,
    n_out: int,
    n_layers: int = 2,
    *,
    layer_norm: bool = True,
    output_activation: bool = False,
) -> nn.Sequential:
    """``n_layers`` linear layers ``n_in -> hidden -> ... -> n_out`` with ReLU between.

    Args:
        n_in: input width.
        hidden: width of the hidden layers.
        n_out: output width.
        n_layers: number of linear layers (>= 1).
        layer_norm: LayerNorm before each hidden activation (stabilises deep message
            passing, as in the acorn Interaction Network).
        output_activation: also normalise + activate the output (for encoders whose
            output feeds further layers).

    Shapes:
        - input ``(*, n_in)`` -> output ``(*, n_out)``
    """
    sizes = [n_in] + [hidden] * (n_layers - 1) + [n_out]
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        last = i == n_layers - 1
        if not last or output_activation:
            if layer_norm:
                layers.append(nn.LayerNorm(sizes[i + 1]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """Fixed input standardisation ``(x - centre) / scale``, fitted once on training data.

    The centre and scale are buffers, so they are saved with the weights. Fitting uses
    robust statistics (median, half the 16-84 % quantile range), since doublet features
    such as ``phi_slope`` have long tails; fine differences between true and fake edges
    (a milliradian in azimuth) then reach the first layer at order one.

    Args:
        n_features: input width.

    Shapes:
        - input ``(*, n_features)`` -> output ``(*, n_features)``
    """

    def __init__(self, n_features: int) -> None:
        import torch

        super().__init__()
        self.register_buffer("centre", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def fit(self, x: Tensor) -> Standardize:
        """Set centre and scale from samples ``(n, n_features)``."""
        import torch

        x = x.detach().float()
        if len(x) > 1_000_000:  # quantiles of a random subset are as good
            x = x[torch.randperm(len(x))[:1_000_000]]
        q = torch.quantile(x, torch.tensor([0.16, 0.5, 0.84]), dim=0)
        self.centre.copy_(q[1])
        self.scale.copy_(((q[2] - q[0]) / 2).clamp(min=1e-6))
        return self

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.centre) / self.scale
