"""Hungarian matching of track queries to true tracks, and the MaskFormer loss.

The cost of pairing query ``i`` with true track ``j`` is, as in MaskFormer / hepattn,
``w_class * (-log p_i) + w_bce * BCE(mask_i, track_j) + w_dice * dice(mask_i, track_j)``;
:func:`scipy.optimize.linear_sum_assignment` picks the pairing of least total cost.
Matched queries learn their track's mask and "is a track"; every other query learns
"no track".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Weights of the matching cost and of the loss (same for both, as hepattn).

    Args:
        cls: track / no-track binary cross-entropy.
        bce: mask binary cross-entropy (mean over the input's hits).
        dice: mask dice loss.
        no_track: weight of the "no track" class in the class loss (MaskFormer's
            ``eos_coef``: most queries are empty).
        aux: weight of each earlier decoder layer's loss relative to the last one.
    """

    cls: float = 1.0
    bce: float = 5.0
    dice: float = 2.0
    no_track: float = 0.5
    aux: float = 0.5


def cost_matrix(
    track_logits: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor, w: LossWeights
) -> torch.Tensor:
    """``(Q, T)`` pairing cost.

    Args:
        track_logits: ``(Q,)``.
        mask_logits: ``(Q, N)``.
        targets: ``(T, N)`` float 0/1 hit masks of the true tracks.
    """
    n = max(mask_logits.shape[1], 1)
    # BCE(l, y) = softplus(l) - y * l, summed over hits: one matrix product for all pairs.
    bce = (F.softplus(mask_logits).sum(1, keepdim=True) - mask_logits @ targets.T) / n
    p = mask_logits.sigmoid()
    inter = p @ targets.T
    dice = 1 - (2 * inter + 1) / (p.sum(1, keepdim=True) + targets.sum(1)[None] + 1)
    cls = F.softplus(-track_logits)[:, None]
    return w.cls * cls + w.bce * bce + w.dice * dice


def match(
    track_logits: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor, w: LossWeights
) -> tuple[np.ndarray, np.ndarray]:
    """Query rows and track columns of the least-cost pairing (``min(Q, T)`` pairs)."""
    from scipy.optimize import linear_sum_assignment

    if len(targets) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    with torch.no_grad():
        cost = cost_matrix(track_logits.float(), mask_logits.float(), targets.float(), w)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    return rows.astype(np.int64), cols.astype(np.int64)


def layer_loss(
    track_logits: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor, w: LossWeights
) -> dict[str, torch.Tensor]:
    """Loss of one decoder layer's predictions, matched on their own costs."""
    rows, cols = match(track_logits, mask_logits, targets, w)
    label = torch.zeros_like(track_logits)
    label[torch.as_tensor(rows, device=label.device)] = 1.0
    weight = torch.full_like(track_logits, w.no_track)
    weight[torch.as_tensor(rows, device=label.device)] = 1.0
    cls = F.binary_cross_entropy_with_logits(track_logits, label, weight=weight, reduction="sum")
    cls = cls / weight.sum()
    if len(rows):
        m = mask_logits[torch.as_tensor(rows, device=label.device)]
        t = targets[torch.as_tensor(cols, device=label.device)]
        bce = F.binary_cross_entropy_with_logits(m, t)
        p = m.sigmoid()
        dice = (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()
    else:
        bce = dice = mask_logits.sum() * 0.0
    total = w.cls * cls + w.bce * bce + w.dice * dice
    return {"loss": total, "cls": cls.detach(), "bce": bce.detach(), "dice": dice.detach()}


def maskformer_loss(
    outputs: list[tuple[torch.Tensor, torch.Tensor]], targets: torch.Tensor, w: LossWeights
) -> dict[str, torch.Tensor]:
    """Last layer's loss plus ``w.aux`` times each earlier layer's (deep supervision)."""
    last = layer_loss(*outputs[-1], targets, w)
    total = last["loss"]
    for out in outputs[:-1]:
        total = total + w.aux * layer_loss(*out, targets, w)["loss"]
    return {**last, "loss": total}
