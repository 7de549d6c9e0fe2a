"""Contrastive losses against hand computations; scores and the NAE on known inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lhcml.anomaly import losses
from lhcml.anomaly.model import JetEncoder, NormalizedAutoencoder
from lhcml.anomaly.scores import AnomalyDetector, fit_nae
from lhcml.errors import ConfigError


def test_anomclr_plus_hand_value() -> None:
    e = torch.eye(4)
    z, zp, za = e[:2], 3 * e[:2], e[2:]  # cos(z, zp) = 1, cos(z, za) = 0
    assert losses.anomclr_plus(z, zp, za, temperature=0.1).item() == pytest.approx(-10.0)
    # Anomalous view equal to the original: s+ - s- = 0.
    assert losses.anomclr_plus(z, zp, z, temperature=0.1).item() == pytest.approx(0.0, abs=1e-6)


def _simclr_loop(z: torch.Tensor, zp: torch.Tensor, t: float) -> float:
    u = F.normalize(torch.cat([z, zp]), dim=1)
    b = len(z)
    total = 0.0
    for i in range(2 * b):
        j = (i + b) % (2 * b)
        num = math.exp(float(u[i] @ u[j]) / t)
        den = sum(math.exp(float(u[i] @ u[k]) / t) for k in range(2 * b) if k not in (i, j))
        total += -math.log(num / den)
    return total / (2 * b)


def test_simclr_and_anomclr_equal_the_reference_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    z, zp, za = (torch.randn(5, 7, generator=g) for _ in range(3))
    assert losses.simclr(z, zp, za, 0.5).item() == pytest.approx(_simclr_loop(z, zp, 0.5), rel=1e-5)
    s_anom = float(F.cosine_similarity(z, za).mean()) / 0.5
    want = _simclr_loop(z, zp, 0.5) + s_anom
    assert losses.anomclr(z, zp, za, 0.5).item() == pytest.approx(want, rel=1e-5)


def test_vicreg_and_loss_names() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(64, 8, generator=g)
    assert float(losses.vicreg_anom(z, z, -z, margin=0.0)) >= 0.0
    with pytest.raises(ConfigError, match="unknown loss 'ntxent'"):
        losses.get_loss("ntxent")


def _detector() -> AnomalyDetector:
    enc = JetEncoder(
        model_dim=8, n_layers=1, n_heads=2, dim_feedforward=16, head_dim=16, output_dim=8
    )
    return AnomalyDetector(enc, NormalizedAutoencoder(8, (16,), 4), bank_size=50, k=3)


def test_clr_and_knn_scores_rank_far_points_higher() -> None:
    det = _detector()
    g = torch.Generator().manual_seed(2)
    h = torch.randn(200, 8, generator=g)
    z = torch.randn(200, 8, generator=g) + torch.tensor([5.0] + [0.0] * 7)  # bank near +x
    det.fit_banks(h, z, g)
    assert torch.allclose(det.h_mean, h.mean(0))
    near_z, far_z = det.bank_z[:1].float(), -det.bank_z[:1].float()
    near_h, far_h = det.bank_h[:1].float(), det.bank_h[:1].float() + 50
    s_near = det.scores_from(near_h, near_z)
    s_far = det.scores_from(far_h, far_z)
    assert s_far["clr"] > s_near["clr"]
    assert s_far["knn"] > s_near["knn"]
    # kNN by hand: mean distance to the k = 3 nearest standardised bank points.
    u = det.standardise(far_h)
    d = torch.cdist(u, det.standardise(det.bank_h.float()))[0].sort().values[:3].mean()
    assert s_far["knn"].item() == pytest.approx(d.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="unknown score"):
        det.scores_from(near_h, near_z, ["mahalanobis"])


def test_nae_learns_lower_energy_on_its_data() -> None:
    torch.manual_seed(3)
    nae = NormalizedAutoencoder(6, (32,), 2)
    g = torch.Generator().manual_seed(3)
    # Data on a 2-d sheet of the 6-d space; off-sheet points must cost more energy.
    t = torch.randn(512, 2, generator=g)
    u = torch.cat([t, 0.5 * t, torch.zeros(512, 2)], 1)
    hist = fit_nae(nae, u, ae_epochs=40, nae_epochs=3, batch_size=64, seed=3)
    assert hist["ae"][-1] < 0.5 * hist["ae"][0]
    off = u + torch.cat([torch.zeros(512, 4), 2 * torch.randn(512, 2, generator=g)], 1)
    with torch.no_grad():
        assert nae.energy(off).mean() > 3 * nae.energy(u).mean()
    assert nae.sample(7, latent_steps=2, data_steps=2).shape == (7, 6)
