"""The networks of the anomaly stage: the DarkCLR jet encoder and the normalized
autoencoder (NAE) on its representations.

Pure ``nn.Module`` s whose ``__init__`` arguments are the YAML keys of
``experiments/anomaly/*.yaml``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lhcml.errors import ConfigError


def massless_vectors(x: Tensor) -> Tensor:
    """``(px, py, pz, E)`` of massless constituents from ``(pT, eta, phi)``:
    ``(B, L, 3) -> (B, L, 4)`` (zero for padding). eta, phi are the jet-centred ones, so
    these are the constituents of the jet seen along the z axis at phi = 0: pair
    distances, pT fractions and, to small-angle accuracy, pair masses are the jet's."""
    pt, eta, phi = x.unbind(-1)
    return torch.stack(
        [pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta), pt * torch.cosh(eta)], -1
    )


class JetEncoder(nn.Module):
    """DarkCLR's transformer encoder of jet constituents.

    Reference (Favaro et al., arXiv:2312.03067; code ``luigifvr/dark-clr``): a linear
    embedding of ``(pT, eta, phi)`` into ``model_dim``, ``n_layers`` transformer encoder
    layers (post-norm, ReLU, ``dim_feedforward``, ``dropout``) with padding masked, the
    per-constituent outputs summed: the *representation* ``h`` (``model_dim``); then a
    projection head ``model_dim -> head_dim -> output_dim`` (ReLU) whose output ``z``
    the contrastive loss sees.

    With ``pair_bias`` the layers are ParT's NormFormer blocks with its pairwise
    interaction bias (``ln kT, ln z, ln Delta, ln m^2`` embedded per head; Qu, Li, Qian,
    arXiv:2202.03772), computed from the constituents as massless four-vectors.

    Args:
        input_dim: constituent features (3).
        model_dim: embedding and representation width.
        n_layers: encoder layers.
        n_heads: attention heads.
        dim_feedforward: hidden width of each layer's MLP.
        dropout: dropout of the encoder layers.
        head_dim: hidden width of the projection head.
        output_dim: projection (loss-space) width.
        pair_bias: ParT interaction bias (False: the reference encoder).
        pair_embed_dims: hidden widths of the pair embedding.

    Shapes:
        x: ``(B, L, input_dim)`` with ``x[..., 0]`` the pT (> 0 for real constituents),
        mask ``(B, L)`` bool -> ``represent``: ``(B, model_dim)``, ``forward``:
        ``(B, output_dim)``.
    """

    def __init__(
        self,
        input_dim: int = 3,
        model_dim: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        dim_feedforward: int = 512,
        dropout: float = 0.1,
        head_dim: int = 512,
        output_dim: int = 512,
        pair_bias: bool = False,
        pair_embed_dims: Sequence[int] = (32, 32),
    ) -> None:
        super().__init__()
        if model_dim % n_heads:
            raise ConfigError(
                f"model.model_dim ({model_dim}) must be a multiple of n_heads ({n_heads})"
            )
        self.input_dim, self.model_dim, self.n_heads = input_dim, model_dim, n_heads
        self.pair_bias = bool(pair_bias)
        self.embedding = nn.Linear(input_dim, model_dim)
        if self.pair_bias:
            from lhcml.jets.models.part import Block, PairEmbed

            self.pair_embed = PairEmbed(4, list(pair_embed_dims), n_heads)
            ratio = max(1, round(dim_feedforward / model_dim))
            self.blocks = nn.ModuleList(
                Block(model_dim, n_heads, ratio, dropout, dropout, dropout) for _ in range(n_layers)
            )
        else:
            layer = nn.TransformerEncoderLayer(
                model_dim, n_heads, dim_feedforward, dropout, activation="relu", batch_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.Linear(model_dim, head_dim), nn.ReLU(), nn.Linear(head_dim, output_dim)
        )

    def represent(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The representation ``h``: summed constituent embeddings, ``(B, model_dim)``."""
        if mask is None:
            mask = x[..., 0] > 0
        y = self.embedding(x)
        if self.pair_bias:
            bias = self.pair_embed(massless_vectors(x), mask)
            # Rows of padded queries: all keys allowed (their output is zeroed below);
            # a row of all -inf would make NaNs.
            bias = bias.masked_fill(~mask[:, None, :, None], 0.0)
            for block in self.blocks:
                y = block(y, bias)
        else:
            y = self.encoder(y, src_key_padding_mask=~mask)
        return (y * mask.unsqueeze(-1)).sum(1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.head(self.represent(x, mask))


class NormalizedAutoencoder(nn.Module):
    """A normalized autoencoder (Yoon, Noh, Park, arXiv:2105.05735; for jets Dillon et al.,
    arXiv:2206.14225) on jet representations.

    The energy of a (standardised) representation ``u`` is its reconstruction error
    ``E(u) = |u - D(E(u))|^2 / dim``, with the latent on the unit sphere. Trained as an
    autoencoder first, then as an energy-based model ``p(u) ~ exp(-E(u) / T)``: the
    loss ``E(data) - E(negatives)`` (+ ``gamma * E^2`` regularisation) with negatives
    from on-manifold Langevin sampling (latent chain on the sphere, decoded, then a
    short chain in data space). The anomaly score is ``E(u)``.

    Args:
        input_dim: representation width.
        hidden_dims: widths of the encoder MLP (the decoder mirrors them).
        latent_dim: latent width (on the unit sphere).

    Shapes:
        u: ``(B, input_dim)`` -> ``energy``: ``(B,)``.
    """

    def __init__(
        self, input_dim: int = 128, hidden_dims: Sequence[int] = (256, 128), latent_dim: int = 16
    ) -> None:
        super().__init__()
        dims = [input_dim, *hidden_dims]
        enc: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            enc += [nn.Linear(a, b), nn.SiLU()]
        self.encoder = nn.Sequential(*enc, nn.Linear(dims[-1], latent_dim))
        rdims = [latent_dim, *dims[::-1]]
        dec: list[nn.Module] = []
        for k, (a, b) in enumerate(itertools.pairwise(rdims)):
            dec.append(nn.Linear(a, b))
            if k < len(rdims) - 2:  # no activation on the output
                dec.append(nn.SiLU())
        self.decoder = nn.Sequential(*dec)
        self.input_dim, self.latent_dim = input_dim, latent_dim

    def encode(self, u: Tensor) -> Tensor:
        return F.normalize(self.encoder(u), dim=-1)

    def energy(self, u: Tensor) -> Tensor:
        return ((u - self.decoder(self.encode(u))) ** 2).mean(-1)

    def forward(self, u: Tensor) -> Tensor:
        return self.energy(u)

    def sample(
        self,
        n: int,
        *,
        latent_steps: int = 20,
        latent_step: float = 0.05,
        latent_noise: float = 0.01,
        data_steps: int = 20,
        data_step: float = 0.01,
        data_noise: float = 0.005,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Negative samples by on-manifold Langevin dynamics (no gradient to the
        parameters): ``(n, input_dim)``."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype).to(p.device)
        z = F.normalize(z, dim=-1)
        was = [q.requires_grad for q in self.parameters()]
        for q in self.parameters():
            q.requires_grad_(False)
        try:
            for _ in range(latent_steps):
                z = z.detach().requires_grad_(True)
                e = self.energy(self.decoder(z)).sum() / temperature
                (g,) = torch.autograd.grad(e, z)
                noise = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
                z = F.normalize(z - latent_step * g + latent_noise * noise, dim=-1)
            u = self.decoder(z).detach()
            for _ in range(data_steps):
                u = u.detach().requires_grad_(True)
                e = self.energy(u).sum() / temperature
                (g,) = torch.autograd.grad(e, u)
                noise = torch.randn(u.shape, generator=generator, dtype=u.dtype).to(u.device)
                u = u - data_step * g + data_noise * noise
        finally:
            for q, r in zip(self.parameters(), was, strict=True):
                q.requires_grad_(r)
        return u.detach()
