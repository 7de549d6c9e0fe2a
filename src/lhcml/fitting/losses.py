"""Regression losses for track parameters with a per-parameter uncertainty.

All losses work on *normalised* targets ``t = (true - reference) / scale`` (see
:mod:`lhcml.fitting.dataset`) and on the model's raw regression output ``out`` of shape
``(B, P, K)``, P parameters, K numbers per parameter:

- ``gnll`` (K = 2: mean, log variance): Gaussian negative log-likelihood
  ``0.5 * (log s^2 + (t - mu)^2 / s^2)``; the log variance is clamped to
  ``[-12, 12]`` for stability. The predicted ``s`` is the per-parameter uncertainty.
- ``mse`` (K = 2, only the mean is trained): ``(t - mu)^2``; the uncertainty output is
  trained by a detached Gaussian NLL so pulls are still available.
- ``quantile`` (K = 3: the 15.87 %, 50 % and 84.13 % quantiles): pinball loss; the
  estimate is the median and the uncertainty half the 68 % interval.

:func:`estimate` turns any of these outputs into ``(mean, sigma)`` in normalised units.
"""

from __future__ import annotations

from typing import Literal

import torch

LossName = Literal["gnll", "mse", "quantile"]
LOSSES: tuple[str, ...] = ("gnll", "mse", "quantile")
QUANTILES: tuple[float, float, float] = (0.15865525393145707, 0.5, 0.8413447460685429)
LOGVAR_MIN, LOGVAR_MAX = -12.0, 12.0


def outputs_per_parameter(loss: str) -> int:
    """K, the numbers the model predicts per parameter for ``loss``."""
    return 3 if loss == "quantile" else 2


def gaussian_nll(mu: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise Gaussian NLL (without the constant), shapes broadcast."""
    logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
    return 0.5 * (logvar + (target - mu) ** 2 * torch.exp(-logvar))


def pinball(pred: torch.Tensor, target: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Element-wise quantile (pinball) loss; ``pred`` (..., K), ``target`` (..., 1)."""
    diff = target - pred
    return torch.maximum(q * diff, (q - 1.0) * diff)


def regression_loss(
    out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, loss: str = "gnll"
) -> torch.Tensor:
    """Mean regression loss over weighted candidates and parameters.

    Args:
        out: (B, P, K) model output.
        target: (B, P) normalised targets (anything where ``weight == 0``).
        weight: (B,) candidate weights (0: not trained on, e.g. fakes).
        loss: ``gnll``, ``mse`` or ``quantile``.

    Shapes:
        returns a scalar tensor.
    """
    target = torch.nan_to_num(target)
    w = weight[:, None]
    denom = weight.sum().clamp_min(1.0) * target.shape[1]
    if loss == "gnll":
        per = gaussian_nll(out[..., 0], out[..., 1], target)
    elif loss == "mse":
        per = (out[..., 0] - target) ** 2
        # Keep the uncertainty head calibrated without pulling on the mean.
        per = per + gaussian_nll(out[..., 0].detach(), out[..., 1], target)
    elif loss == "quantile":
        q = torch.tensor(QUANTILES, dtype=out.dtype, device=out.device)
        per = pinball(out, target[..., None], q).sum(-1)
    else:
        raise ValueError(f"unknown loss '{loss}'; choose from {list(LOSSES)}")
    return (per * w).sum() / denom


def estimate(out: torch.Tensor, loss: str = "gnll") -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, sigma)`` (B, P) in normalised units from the model output (B, P, K)."""
    if loss == "quantile":
        q = torch.sort(out, dim=-1).values
        return q[..., 1], 0.5 * (q[..., 2] - q[..., 0]).clamp_min(1e-6)
    sigma = torch.exp(0.5 * out[..., 1].clamp(LOGVAR_MIN, LOGVAR_MAX))
    return out[..., 0], sigma
