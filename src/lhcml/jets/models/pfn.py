"""Particle Flow Network (Deep Sets), a baseline tagger and a pure ``nn.Module``.

Komiske, Metodiev, Thaler, "Energy Flow Networks: Deep Sets for Particle Jets",
JHEP 01 (2019) 121 (arXiv:1810.05165): a per-particle network Phi, a sum over the
particles of the jet, and a network F on the sum. Padded particles are zeroed before the
sum, so the output depends neither on padding nor on particle order.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def _mlp(width: int, sizes: Sequence[int], dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(width, int(size)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    return nn.Sequential(*layers), width


class ParticleFlowNetwork(nn.Module):
    """Deep Sets jet tagger: ``F(sum_i Phi(x_i))``.

    Args:
        input_dim: particle features.
        num_classes: output classes.
        phi_sizes: widths of the per-particle network (the last is the latent size).
        f_sizes: widths of the network on the summed latent vector.
        dropout: dropout after each hidden layer of F.

    Shapes:
        x: ``(B, L, input_dim)``, v: ignored (kept for a common tagger signature),
        mask: ``(B, L)`` bool -> logits ``(B, num_classes)``.
    """

    def __init__(
        self,
        input_dim: int = 13,
        num_classes: int = 2,
        phi_sizes: Sequence[int] = (100, 100, 256),
        f_sizes: Sequence[int] = (100, 100, 100),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.phi, width = _mlp(input_dim, phi_sizes, 0.0)
        self.f, width = _mlp(width, f_sizes, dropout)
        self.out = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, v: Tensor | None, mask: Tensor) -> Tensor:
        latent = (self.phi(x) * mask.unsqueeze(-1).to(x.dtype)).sum(1)
        return self.out(self.f(latent))
