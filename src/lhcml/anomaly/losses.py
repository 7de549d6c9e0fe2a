"""Contrastive losses of DarkCLR and its variants.

``z``, ``z_pos``, ``z_anom``: ``(B, D)`` projection-head outputs of a batch, of its
physical views and of its anomalous views; the similarities are cosines.

- :func:`anomclr_plus` (the reference's default, "AnomCLR+"): the mean of
  ``(sim(z, z_anom) - sim(z, z_pos)) / tau``, i.e. ``-log exp((s+ - s-) / tau)``: no
  in-batch negatives.
- :func:`anomclr`: the same numerator over SimCLR's in-batch denominator (AnomCLR).
- :func:`simclr`: NT-Xent of SimCLR (arXiv:2002.05709); the anomalous view unused.
- :func:`vicreg_anom`: VICReg (arXiv:2105.04906) between the physical pair plus a
  hinge pushing the anomalous view's cosine below ``margin``.

Every loss adds ``norm_penalty`` times the mean output norm (1e-3 in the reference),
which keeps the unnormalised outputs bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from lhcml.errors import ConfigError


def _cos(a: Tensor, b: Tensor) -> Tensor:
    return (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)


def anomclr_plus(z: Tensor, z_pos: Tensor, z_anom: Tensor, temperature: float = 0.1) -> Tensor:
    """AnomCLR+ (see the module docstring)."""
    return ((_cos(z, z_anom) - _cos(z, z_pos)) / temperature).mean()


def _nt_xent_terms(z: Tensor, z_pos: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Positive similarities ``(2B,)`` and the log of SimCLR's denominators ``(2B,)``."""
    b = z.shape[0]
    u = F.normalize(torch.cat([z, z_pos]), dim=1)
    sim = u @ u.T / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    pos = torch.cat([torch.diagonal(sim, b), torch.diagonal(sim, -b)])
    # Reference denominators leave out the positive too.
    idx = torch.arange(2 * b, device=z.device)
    partner = torch.cat([idx[b:], idx[:b]])
    sim_neg = sim.clone()
    sim_neg[idx, partner] = float("-inf")
    return pos, torch.logsumexp(sim_neg, dim=1)


def simclr(
    z: Tensor, z_pos: Tensor, z_anom: Tensor | None = None, temperature: float = 0.1
) -> Tensor:
    """NT-Xent with the positive left out of the denominator (the reference's
    ``clr_loss``)."""
    del z_anom
    pos, log_den = _nt_xent_terms(z, z_pos, temperature)
    return (log_den - pos).mean()


def anomclr(z: Tensor, z_pos: Tensor, z_anom: Tensor, temperature: float = 0.1) -> Tensor:
    """AnomCLR: ``-log(exp((s+ - s-) / tau) / sum_negatives exp(s / tau))``."""
    pos, log_den = _nt_xent_terms(z, z_pos, temperature)
    s_anom = _cos(z, z_anom) / temperature
    return (log_den - pos + torch.cat([s_anom, s_anom])).mean()


def vicreg_anom(
    z: Tensor,
    z_pos: Tensor,
    z_anom: Tensor,
    temperature: float = 0.1,
    margin: float = 0.0,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
) -> Tensor:
    """VICReg between ``z`` and ``z_pos`` plus ``(cos(z, z_anom) - margin)_+ / tau``."""

    def var_cov(a: Tensor) -> tuple[Tensor, Tensor]:
        a = a - a.mean(0)
        std = torch.sqrt(a.var(0) + 1e-4)
        cov = (a.T @ a) / max(a.shape[0] - 1, 1)
        off = cov - torch.diag(torch.diagonal(cov))
        return F.relu(1 - std).mean(), (off**2).sum() / a.shape[1]

    v1, c1 = var_cov(z)
    v2, c2 = var_cov(z_pos)
    inv = F.mse_loss(z, z_pos)
    anom = F.relu(_cos(z, z_anom) - margin).mean() / temperature
    return sim_weight * inv + var_weight * (v1 + v2) / 2 + cov_weight * (c1 + c2) + anom


Loss = Callable[..., Tensor]
#: Losses by config name.
LOSSES: Mapping[str, Loss] = {
    "anomclr_plus": anomclr_plus,
    "anomclr": anomclr,
    "simclr": simclr,
    "vicreg_anom": vicreg_anom,
}


def get_loss(name: str) -> Loss:
    """The loss called ``name`` (:data:`LOSSES`).

    Raises:
        ConfigError: an unknown name.
    """
    if name not in LOSSES:
        raise ConfigError(f"module.loss: unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return LOSSES[name]


def norm_penalty(*outputs: Tensor) -> Tensor:
    """Mean L2 norm of the (unnormalised) outputs."""
    return torch.stack([o.norm(dim=1).mean() for o in outputs]).mean()
