"""Jet augmentations on batches, vectorised in torch (no loop over jets).

A batch is ``x``: ``(B, L, 3)`` constituents ``(pT, eta, phi)`` as made by
:mod:`lhcml.anomaly.data` (pT > 0 marks a real constituent, padding is all zero).
Every function returns a new tensor of the same shape and keeps padding at zero.

*Physical* augmentations (DarkCLR's positive pairs) change a jet into one a detector
could equally have seen: :func:`rotate` (about the jet axis), :func:`translate` (in
eta-phi, width 1.0 in the reference), :func:`distort` (soft constituents moved more),
:func:`collinear_split` (IR/collinear-safe splittings). *Anomalous* augmentations
make a jet unlike the background: :func:`drop` (constituents removed with probability
0.5, pT rescaled to the jet's, the reference's), :func:`pt_reweight`, :func:`shift_pt`,
:func:`smear_pt`, :func:`add_soft` (a multiplicity shift). The parameters and their
defaults follow ``jet_augmentations.py`` of the reference code where it has them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lhcml.errors import ConfigError


def _rand(shape: Sequence[int], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(tuple(shape), generator=generator, dtype=like.dtype, device=like.device)


def _randn(shape: Sequence[int], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(tuple(shape), generator=generator, dtype=like.dtype, device=like.device)


def real(x: Tensor) -> Tensor:
    """``(B, L)`` True for real constituents (pT > 0)."""
    return x[..., 0] > 0


def recentre_sort(x: Tensor) -> Tensor:
    """Centre eta, phi on the pT-weighted centroid and order constituents by pT (padding
    last)."""
    pt = x[..., 0]
    w = pt / pt.sum(1, keepdim=True).clamp_min(1e-12)
    centre = (w.unsqueeze(-1) * x[..., 1:]).sum(1, keepdim=True)
    angles = (x[..., 1:] - centre) * (pt > 0).unsqueeze(-1)
    out = torch.cat([pt.unsqueeze(-1), angles], -1)
    order = torch.argsort(pt, dim=1, descending=True, stable=True)
    return torch.gather(out, 1, order.unsqueeze(-1).expand_as(out))


def rotate(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Rotate each jet by a uniform random angle about its axis in the eta-phi plane."""
    angle = _rand((x.shape[0], 1), x, generator) * (2 * math.pi)
    c, s = torch.cos(angle), torch.sin(angle)
    eta, phi = x[..., 1], x[..., 2]
    return torch.stack([x[..., 0], c * eta + s * phi, -s * eta + c * phi], -1)


def translate(x: Tensor, width: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Shift each jet in eta and phi by a uniform amount in ``+-width`` times the jet's
    eta (phi) extent (max - min over its constituents)."""
    m = real(x)
    out = x.clone()
    for axis in (1, 2):
        big = torch.finfo(x.dtype).max
        hi = torch.where(m, x[..., axis], -big).amax(1, keepdim=True)
        lo = torch.where(m, x[..., axis], big).amin(1, keepdim=True)
        extent = (hi - lo).clamp_min(0.0)
        shift = (2 * _rand((x.shape[0], 1), x, generator) - 1) * width * extent
        out[..., axis] = torch.where(m, x[..., axis] + shift, 0.0)
    return out


def distort(
    x: Tensor,
    strength: float = 0.1,
    pt_clip_min: float = 0.1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Move each constituent in eta and phi by a normal shift of width ``strength / pT``
    (pT in the input's scaled units, clipped below at ``pt_clip_min``): soft particles
    move more, as soft radiation would."""
    m = real(x)
    sigma = strength / x[..., 0].clamp_min(pt_clip_min)
    out = x.clone()
    for axis in (1, 2):
        shift = _randn(x.shape[:2], x, generator) * sigma
        out[..., axis] = torch.where(m, x[..., axis] + shift, 0.0)
    return out


def collinear_split(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Split random constituents in two collinear ones (fractions ``r``, ``1 - r`` of
    their pT, same direction), as many as the padding has room for (at most one split
    per constituent); then re-order by pT. Jet pT and axis are unchanged."""
    b, length, _ = x.shape
    m = real(x)
    n = m.sum(1)
    n_split = torch.minimum(n, length - n)  # (B,)
    # A random order of each jet's real constituents: random keys, padding last.
    keys = torch.where(m, _rand((b, length), x, generator), 2.0)
    src = torch.argsort(keys, dim=1)  # (B, L): the j-th chosen constituent
    slot = torch.arange(length, device=x.device).unsqueeze(0)
    does = slot < n_split.unsqueeze(1)  # the j-th chosen constituent is split
    dst = (n.unsqueeze(1) + slot).clamp_max(length - 1)  # the padding slot it goes to
    r = _rand((b, length), x, generator)
    src_pt = torch.gather(x[..., 0], 1, src)
    out = x.clone()
    pt = out[..., 0].clone()
    # Chosen constituents keep r * pT ...
    pt.scatter_(1, src, torch.where(does, r * src_pt, src_pt))
    out[..., 0] = pt
    # ... and their partner (1 - r) * pT goes to the next padding slot, same eta, phi.
    part = torch.stack(
        [(1 - r) * src_pt, torch.gather(x[..., 1], 1, src), torch.gather(x[..., 2], 1, src)], -1
    )
    idx = torch.where(does, dst, length)  # non-splits go to a dump column
    grown = torch.cat([out, torch.zeros_like(out[:, :1])], 1)
    grown.scatter_(1, idx.unsqueeze(-1).expand(-1, -1, 3), part * does.unsqueeze(-1))
    return recentre_sort(grown[:, :length])


def drop(x: Tensor, prob: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Remove each constituent with probability ``prob`` (a jet keeps at least its
    hardest one), rescale the survivors' pT so the jet keeps its scalar pT sum,
    recentre and re-order."""
    m = real(x)
    keep = m & (_rand(x.shape[:2], x, generator) >= prob)
    none_left = ~keep.any(1)
    keep[:, 0] |= none_left  # inputs are pT-ordered: slot 0 is the hardest
    pt = x[..., 0]
    scale = pt.sum(1, keepdim=True) / (pt * keep).sum(1, keepdim=True).clamp_min(1e-12)
    out = x * keep.unsqueeze(-1)
    out = torch.cat([(out[..., :1] * scale.unsqueeze(-1)), out[..., 1:]], -1)
    return recentre_sort(out)


def pt_reweight(x: Tensor, beta: float = 1.5, generator: torch.Generator | None = None) -> Tensor:
    """Constituent pT -> pT^beta, rescaled to the jet's pT sum (beta > 1: harder cores);
    recentred and re-ordered."""
    del generator
    pt = x[..., 0]
    new = pt.clamp_min(0) ** beta
    new = new * pt.sum(1, keepdim=True) / new.sum(1, keepdim=True).clamp_min(1e-12)
    return recentre_sort(torch.cat([new.unsqueeze(-1), x[..., 1:]], -1))


def shift_pt(
    x: Tensor, low: float = 1.0, high: float = 5.0, generator: torch.Generator | None = None
) -> Tensor:
    """Scale every constituent pT of a jet by one uniform factor in ``[low, high]``."""
    f = low + (high - low) * _rand((x.shape[0], 1), x, generator)
    return torch.cat([(x[..., 0] * f).unsqueeze(-1), x[..., 1:]], -1)


def smear_pt(x: Tensor, sigma: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """Multiply each constituent pT by ``max(0.01, 1 + sigma * N(0, 1))``; re-ordered."""
    m = real(x)
    f = (1 + sigma * _randn(x.shape[:2], x, generator)).clamp_min(0.01)
    pt = torch.where(m, x[..., 0] * f, 0.0)
    return recentre_sort(torch.cat([pt.unsqueeze(-1), x[..., 1:]], -1))


def add_soft(
    x: Tensor,
    fraction: float = 0.3,
    pt_max: float = 0.01,
    radius: float = 0.8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill ``fraction`` of each jet's multiplicity (within its padding) with soft
    constituents (pT uniform in ``(0, pt_max]`` scaled units, directions uniform in a
    disc of ``radius``): a multiplicity shift, the kind of jet a dark shower makes."""
    b, length, _ = x.shape
    m = real(x)
    n = m.sum(1, keepdim=True)
    n_add = torch.minimum(torch.ceil(n * fraction), length - n)
    slot = torch.arange(length, device=x.device).unsqueeze(0)
    new = (slot >= n) & (slot < n + n_add)
    r = radius * torch.sqrt(_rand((b, length), x, generator))
    a = _rand((b, length), x, generator) * (2 * math.pi)
    soft = torch.stack(
        [pt_max * (1 - _rand((b, length), x, generator)), r * torch.cos(a), r * torch.sin(a)], -1
    )
    return recentre_sort(torch.where(new.unsqueeze(-1), soft, x))


Augmentation = Callable[..., Tensor]
#: Augmentations by their config name (``physical`` / ``anomalous`` lists of a config).
AUGMENTATIONS: Mapping[str, Augmentation] = {
    "rotate": rotate,
    "translate": translate,
    "distort": distort,
    "collinear_split": collinear_split,
    "drop": drop,
    "pt_reweight": pt_reweight,
    "shift_pt": shift_pt,
    "smear_pt": smear_pt,
    "add_soft": add_soft,
}


class Pipeline:
    """A chain of augmentations from a config list, e.g.
    ``[{"name": "rotate"}, {"name": "translate", "width": 1.0}]`` (or bare names).

    Raises:
        ConfigError: an unknown augmentation or parameter, naming ``where``.
    """

    def __init__(
        self, steps: Sequence[str | Mapping[str, Any]], where: str = "augmentations"
    ) -> None:
        import inspect

        self.steps: list[tuple[Augmentation, dict[str, Any]]] = []
        for step in steps:
            spec = {"name": step} if isinstance(step, str) else dict(step)
            name = spec.pop("name", None)
            if name not in AUGMENTATIONS:
                raise ConfigError(
                    f"{where}: unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}"
                )
            fn = AUGMENTATIONS[name]
            allowed = set(inspect.signature(fn).parameters) - {"x", "generator"}
            if set(spec) - allowed:
                raise ConfigError(
                    f"{where}: {name} has no parameter(s) {sorted(set(spec) - allowed)}; "
                    f"it takes {sorted(allowed)}"
                )
            self.steps.append((fn, spec))

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for fn, kwargs in self.steps:
            x = fn(x, generator=generator, **kwargs)
        return x

    def __len__(self) -> int:
        return len(self.steps)
