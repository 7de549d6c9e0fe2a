"""Augmentations: the physics each promises (pT sums, axes, distances, multiplicities)."""

from __future__ import annotations

import math

import pytest
import torch

from lhcml.anomaly import augment as A
from lhcml.errors import ConfigError


def _jets(b: int = 64, length: int = 20, seed: int = 0) -> torch.Tensor:
    """Random centred, pT-ordered jets with 3..length-3 constituents, padding zero."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(3, length - 3, (b,), generator=g)
    pt = torch.rand(b, length, generator=g) * (torch.arange(length) < n[:, None])
    ang = 0.3 * torch.randn(b, length, 2, generator=g)
    x = torch.cat([pt.unsqueeze(-1), ang], -1)
    return A.recentre_sort(x)


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x[..., 1:], x[..., 1:]) * (A.real(x)[:, :, None] & A.real(x)[:, None, :])


def test_recentre_sort_centres_and_orders() -> None:
    x = _jets()
    pt = x[..., 0]
    centre = (pt.unsqueeze(-1) * x[..., 1:]).sum(1) / pt.sum(1, keepdim=True)
    assert centre.abs().max() < 1e-5
    assert (pt[:, :-1] >= pt[:, 1:]).all()
    assert (x[~A.real(x)] == 0).all()


def test_rotate_keeps_pt_radii_and_distances() -> None:
    x = _jets()
    y = A.rotate(x, torch.Generator().manual_seed(1))
    assert torch.equal(y[..., 0], x[..., 0])
    assert torch.allclose(y[..., 1:].norm(dim=-1), x[..., 1:].norm(dim=-1), atol=1e-6)
    assert torch.allclose(_pairwise(y), _pairwise(x), atol=1e-5)
    # The rotation by the angle the generator draws: eta' = c eta + s phi.
    g = torch.Generator().manual_seed(2)
    angle = torch.rand((x.shape[0], 1), generator=torch.Generator().manual_seed(2)) * 2 * math.pi
    y = A.rotate(x, g)
    c, s = torch.cos(angle), torch.sin(angle)
    assert torch.allclose(y[..., 1], c * x[..., 1] + s * x[..., 2], atol=1e-6)


def test_translate_is_a_rigid_shift_within_the_width() -> None:
    x = _jets()
    y = A.translate(x, width=0.5, generator=torch.Generator().manual_seed(3))
    m = A.real(x)
    shift = (y - x)[..., 1:]
    first = shift[:, :1]
    assert torch.allclose(
        torch.where(m.unsqueeze(-1), shift - first, 0.0), torch.zeros_like(shift), atol=1e-6
    )
    assert (y[~m] == 0).all()
    big = 1e9
    extent = torch.where(m, x[..., 1], -big).amax(1) - torch.where(m, x[..., 1], big).amin(1)
    assert (first[:, 0, 0].abs() <= 0.5 * extent + 1e-6).all()


def test_collinear_split_keeps_jet_and_fills_padding() -> None:
    x = _jets(length=20)
    n = A.real(x).sum(1)
    y = A.collinear_split(x, torch.Generator().manual_seed(4))
    assert torch.allclose(y[..., 0].sum(1), x[..., 0].sum(1), atol=1e-5)
    assert torch.equal(A.real(y).sum(1), torch.minimum(2 * n, torch.full_like(n, 20)))
    # Directions are the originals' (each new constituent sits on an old one).
    for b in range(4):
        old = x[b, : n[b], 1:]
        new = y[b, A.real(y)[b], 1:]
        assert torch.cdist(new, old).min(1).values.max() < 1e-5


def test_drop_keeps_pt_sum_and_one_constituent() -> None:
    x = _jets(b=2000, length=20)
    y = A.drop(x, prob=0.5, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(y[..., 0].sum(1), x[..., 0].sum(1), rtol=1e-5)
    assert (A.real(y).sum(1) >= 1).all()
    kept = A.real(y).sum() / A.real(x).sum()
    assert abs(float(kept) - 0.5) < 0.02
    pt = y[..., 0]
    centre = (pt.unsqueeze(-1) * y[..., 1:]).sum(1) / pt.sum(1, keepdim=True)
    assert centre.abs().max() < 1e-5
    # prob = 1: only the hardest constituent survives, carrying the whole jet pT.
    y1 = A.drop(x, prob=1.0)
    assert torch.equal(A.real(y1).sum(1), torch.ones(len(x), dtype=torch.long))
    assert torch.allclose(y1[:, 0, 0], x[..., 0].sum(1))


def test_pt_reweight_and_shifts() -> None:
    x = _jets()
    assert torch.allclose(A.pt_reweight(x, beta=1.0), x, atol=1e-6)
    y = A.pt_reweight(x, beta=2.0)
    assert torch.allclose(y[..., 0].sum(1), x[..., 0].sum(1), rtol=1e-5)
    assert (y[:, 0, 0] >= x[:, 0, 0] - 1e-6).all()  # harder leading constituent
    s = A.shift_pt(x, 2.0, 2.0)
    assert torch.allclose(s[..., 0], 2 * x[..., 0])
    sm = A.smear_pt(x, sigma=0.0)
    assert torch.allclose(sm, x, atol=1e-6)


def test_add_soft_adds_the_promised_multiplicity() -> None:
    x = _jets(length=20)
    n = A.real(x).sum(1)
    y = A.add_soft(x, fraction=0.5, pt_max=1e-3, generator=torch.Generator().manual_seed(6))
    want = torch.minimum(n + torch.ceil(n * 0.5).long(), torch.full_like(n, 20))
    assert torch.equal(A.real(y).sum(1), want)
    assert torch.allclose(y[..., 0].sum(1), x[..., 0].sum(1), atol=20e-3)


def test_pipeline_config_errors() -> None:
    p = A.Pipeline(["rotate", {"name": "translate", "width": 0.1}])
    assert len(p) == 2
    with pytest.raises(ConfigError, match="unknown augmentation 'spin'"):
        A.Pipeline(["spin"], "augmentations.physical")
    with pytest.raises(ConfigError, match="drop has no parameter"):
        A.Pipeline([{"name": "drop", "p": 0.5}])
