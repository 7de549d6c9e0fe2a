"""TrackFormer: padding invariance, overfitting a tiny set, losses, features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lhcml.fitting.candidates import Candidates, truth_candidates
from lhcml.fitting.dataset import Batches, FeatureConfig, collate, denormalise, encode, normalise
from lhcml.fitting.losses import estimate, regression_loss
from lhcml.fitting.toys import toy_event
from lhcml.fitting.trackformer import TrackFormer


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    # Small tensors: one thread is fastest and does not fight other processes.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def cands() -> Candidates:
    rng = np.random.default_rng(11)
    return Candidates.concat(truth_candidates(toy_event(40, rng, event_id=i)) for i in range(2))


def _model(enc_cfg: FeatureConfig, k: int = 2) -> TrackFormer:
    torch.manual_seed(0)
    return TrackFormer(
        enc_cfg.n_hit_features,
        enc_cfg.n_global_features,
        d_model=32,
        n_heads=4,
        n_layers=2,
        d_ff=64,
        outputs_per_param=k,
    )


def test_outputs_do_not_depend_on_padding(cands: Candidates) -> None:
    cfg = FeatureConfig()
    enc = encode(cands, cfg)
    model = _model(cfg).eval()
    # Random (not zero) output weights so the regression head is not trivially constant.
    torch.nn.init.normal_(model.param_head[-1].weight)
    shortest = int(np.argmin(enc.lengths))
    longest = int(np.argmax(enc.lengths))
    assert enc.lengths[shortest] < enc.lengths[longest]
    alone = collate(enc, np.array([shortest]))
    padded = collate(enc, np.array([shortest, longest]))
    assert padded["hits"].shape[1] > alone["hits"].shape[1]
    with torch.no_grad():
        a = model(alone["hits"], alone["detector_id"], alone["mask"], alone["global"])
        b = model(padded["hits"], padded["detector_id"], padded["mask"], padded["global"])
        # Garbage in the padding must not leak either.
        padded["hits"][0, ~padded["mask"][0]] = 1e3
        c = model(padded["hits"], padded["detector_id"], padded["mask"], padded["global"])
    n = int(enc.lengths[shortest])
    for out in (b, c):
        torch.testing.assert_close(out["params"][0], a["params"][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["cand_logit"][0], a["cand_logit"][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            out["hit_logit"][0, :n], a["hit_logit"][0, :n], atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize(
    ("coords", "seed"),
    [("xyz", "helix"), ("rphiz", "helix"), ("rdphiz", "helix"), ("rdphiz", "none")],
)
def test_overfits_a_tiny_set(cands: Candidates, coords: str, seed: str) -> None:
    cfg = FeatureConfig(coords=coords, seed=seed)
    enc = encode(cands.select(np.arange(32)), cfg)
    batch = collate(enc, np.arange(len(enc)))
    model = _model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def loss_fn() -> torch.Tensor:
        out = model(batch["hits"], batch["detector_id"], batch["mask"], batch["global"])
        return regression_loss(out["params"], batch["target"], batch["reg_weight"], "mse")

    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(loss_fn()) < first / 10


def test_gaussian_nll_learns_the_spread() -> None:
    # One parameter, targets N(0.5, 2^2): the GNLL optimum is mean 0.5, sigma 2.
    gen = torch.Generator().manual_seed(0)
    target = 0.5 + 2.0 * torch.randn(20000, 1, generator=gen)
    out = torch.zeros(1, 1, 2, requires_grad=True)
    opt = torch.optim.Adam([out], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        loss = regression_loss(out.expand(len(target), 1, 2), target, torch.ones(len(target)))
        loss.backward()
        opt.step()
    mean, sigma = estimate(out.detach())
    assert float(mean) == pytest.approx(0.5, abs=0.05)
    assert float(sigma) == pytest.approx(2.0, rel=0.03)


def test_quantile_loss_learns_the_quantiles() -> None:
    gen = torch.Generator().manual_seed(1)
    target = 2.0 * torch.randn(20000, 1, generator=gen)
    out = torch.tensor([[[-0.1, 0.0, 0.1]]], requires_grad=True)
    opt = torch.optim.Adam([out], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        regression_loss(
            out.expand(len(target), 1, 3), target, torch.ones(len(target)), "quantile"
        ).backward()
        opt.step()
    mean, sigma = estimate(out.detach(), "quantile")
    assert float(mean) == pytest.approx(0.0, abs=0.06)
    assert float(sigma) == pytest.approx(2.0, rel=0.05)


def test_targets_round_trip_and_seed_quality(cands: Candidates) -> None:
    enc = encode(cands, FeatureConfig(seed="helix"))
    back = denormalise(enc.target.astype(np.float64), enc.reference, enc.scale)
    np.testing.assert_allclose(back, cands.targets, rtol=1e-5, atol=1e-6)
    again = normalise(back, enc.reference, enc.scale)
    np.testing.assert_allclose(again, enc.target, rtol=1e-4, atol=1e-4)
    # The seed is a helix fit: the normalised q/pT correction is O(1) (1 % units).
    assert np.median(np.abs(enc.target[:, 0])) < 5
    assert enc.reg_weight.sum() == len(cands)  # truth candidates are pure


def test_batches_bucket_by_length(cands: Candidates) -> None:
    enc = encode(cands, FeatureConfig())
    seen = []
    for batch in Batches(enc, 16, shuffle=True, seed=3):
        lengths = batch["mask"].sum(1)
        assert int(lengths.max()) == batch["hits"].shape[1]
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(cands)))
    sizes = [b["hits"].shape[0] for b in Batches(enc, 1000, max_tokens=160)]
    assert max(sizes) * 10 <= 160 * 2 and sum(sizes) == len(cands)
