"""Anomaly scores on DarkCLR representations, fitted on background jets only.

Larger is more anomalous for every score:

- ``clr``: the CLR-inspired score, ``-log mean_j exp((cos(z, z_j) - 1) / tau)`` over a
  bank of background jets' projections ``z_j``: a von Mises-Fisher kernel density in
  the space (and at the temperature) the contrastive loss shaped, so a jet far, in
  cosine, from every background jet scores high. The reference repository has no
  scoring code; this is our reading of the paper's description.
- ``nae``: the energy of a :class:`~lhcml.anomaly.model.NormalizedAutoencoder` trained
  on the standardised representations ``h`` (the paper's density estimator).
- ``knn``: mean Euclidean distance to the ``k`` nearest background representations
  (standardised ``h``), the simplest density estimate.
- ``norm``: ``|z|``, the projection's norm (the loss penalises it on background).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lhcml.anomaly.model import JetEncoder, NormalizedAutoencoder
from lhcml.errors import ConfigError

SCORES: tuple[str, ...] = ("clr", "nae", "knn", "norm")


class AnomalyDetector(nn.Module):
    """A trained encoder with its background banks and NAE: jets -> scores.

    Args:
        encoder: the contrastive encoder.
        nae: the normalized autoencoder on standardised representations.
        bank_size: background jets kept for the ``clr`` and ``knn`` scores.
        temperature: of the ``clr`` kernel (the training temperature).
        k: neighbours of the ``knn`` score.
    """

    def __init__(
        self,
        encoder: JetEncoder,
        nae: NormalizedAutoencoder,
        bank_size: int = 2000,
        temperature: float = 0.1,
        k: int = 10,
    ) -> None:
        super().__init__()
        self.encoder, self.nae = encoder, nae
        self.temperature, self.k = float(temperature), int(k)
        d_h, d_z = encoder.model_dim, encoder.head[-1].out_features
        self.register_buffer("bank_z", torch.zeros(bank_size, d_z, dtype=torch.float16))
        self.register_buffer("bank_h", torch.zeros(bank_size, d_h, dtype=torch.float16))
        self.register_buffer("h_mean", torch.zeros(d_h))
        self.register_buffer("h_std", torch.ones(d_h))

    def standardise(self, h: Tensor) -> Tensor:
        return (h - self.h_mean) / self.h_std

    @torch.no_grad()
    def embed(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(h, z)``: representations and projections."""
        h = self.encoder.represent(x, mask)
        return h, self.encoder.head(h)

    @torch.no_grad()
    def scores_from(self, h: Tensor, z: Tensor, which: Sequence[str] = SCORES) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        u = self.standardise(h)
        for name in which:
            if name == "clr":
                zn = nn.functional.normalize(z, dim=1)
                bank = nn.functional.normalize(self.bank_z.float(), dim=1)
                log_k = (zn @ bank.T - 1) / self.temperature
                out[name] = -(torch.logsumexp(log_k, 1) - np.log(bank.shape[0]))
            elif name == "nae":
                out[name] = self.nae.energy(u)
            elif name == "knn":
                d = torch.cdist(u, self.standardise(self.bank_h.float()))
                k = min(self.k, d.shape[1])
                out[name] = d.topk(k, dim=1, largest=False).values.mean(1)
            elif name == "norm":
                out[name] = z.norm(dim=1)
            else:
                raise ConfigError(f"score: unknown score {name!r}; choose from {', '.join(SCORES)}")
        return out

    @torch.no_grad()
    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        h, z = self.embed(x, mask)
        return self.scores_from(h, z)

    @torch.no_grad()
    def fit_banks(self, h: Tensor, z: Tensor, generator: torch.Generator | None = None) -> None:
        """Fill the banks and the standardisation from background ``h``, ``z``."""
        self.h_mean.copy_(h.mean(0))
        self.h_std.copy_(h.std(0).clamp_min(1e-6))
        n = self.bank_z.shape[0]
        if len(h) < n:
            raise ConfigError(f"detector.bank_size: {n} is more than the {len(h)} training jets")
        pick = torch.randperm(len(h), generator=generator)[:n]
        self.bank_z.copy_(z[pick].half())
        self.bank_h.copy_(h[pick].half())


def fit_nae(
    nae: NormalizedAutoencoder,
    u: Tensor,
    *,
    ae_epochs: int = 20,
    nae_epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    nae_lr: float = 1e-4,
    gamma: float = 1.0,
    temperature: float = 1.0,
    sampling: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``nae`` on standardised background representations ``u``: autoencoder
    epochs, then NAE epochs (positive energies down, Langevin negatives' energies up).

    Returns:
        The epoch losses ``{"ae": [...], "nae": [...]}``.
    """
    g = torch.Generator().manual_seed(seed)
    hist: dict[str, list[float]] = {"ae": [], "nae": []}
    opt = torch.optim.Adam(nae.parameters(), lr=lr)
    nae.train()
    for _ in range(ae_epochs):
        tot = 0.0
        for idx in torch.randperm(len(u), generator=g).split(batch_size):
            loss = nae.energy(u[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        hist["ae"].append(tot / len(u))
    opt = torch.optim.Adam(nae.parameters(), lr=nae_lr)
    for _ in range(nae_epochs):
        tot = 0.0
        for idx in torch.randperm(len(u), generator=g).split(batch_size):
            neg = nae.sample(len(idx), temperature=temperature, generator=g, **dict(sampling or {}))
            e_pos, e_neg = nae.energy(u[idx]), nae.energy(neg)
            loss = (e_pos.mean() - e_neg.mean()) / temperature
            loss = loss + gamma * (e_pos**2).mean() + gamma * (e_neg**2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        hist["nae"].append(tot / len(u))
    nae.eval()
    return hist
