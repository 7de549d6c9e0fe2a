"""TrackFormer: padding invariance, overfitting a tiny set, losses, features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lhcml.fitting.candidates import Candidates, truth_candidates
from lhcml.fitting.dataset import (
    Batches,
    FeatureConfig,
    collate,
    denormalise,
    encode,
    length_buckets,
    normalise,
)
from lhcml.fitting.losses import estimate, regression_loss
from lhcml.fitting.toys import toy_event
from lhcml.fitting.trackformer import TrackFormer, encoder_layer, padding_bias, summary_layer


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


@pytest.mark.parametrize("padded", [True, False])
def test_encoder_layer_matches_pytorch(padded: bool) -> None:
    # Our keys-first evaluation must reproduce nn.TransformerEncoderLayer with the same
    # weights (the shipped model was trained with PyTorch's).
    torch.manual_seed(3)
    layer = torch.nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    x = torch.randn(5, 9, 32)
    lengths = torch.tensor([9, 4, 7, 9, 2]) if padded else torch.full((5,), 9)
    valid = torch.arange(9)[None, :] < lengths[:, None]
    bias = padding_bias(valid[:, 1:], 4) if padded else None
    with torch.no_grad():
        ours = encoder_layer(layer, x, bias)
        ref = layer(x, src_key_padding_mask=~valid if padded else None)
    torch.testing.assert_close(ours[valid], ref[valid], atol=1e-5, rtol=1e-5)
    # Different weights give different outputs (the comparison can fail).
    with torch.no_grad():
        layer.self_attn.in_proj_weight.mul_(2.0)
        assert (encoder_layer(layer, x, bias)[valid] - ref[valid]).abs().max() > 1e-2


@pytest.mark.parametrize("padded", [True, False])
def test_summary_layer_is_the_first_token_of_encoder_layer(padded: bool) -> None:
    # The fitting-only forward evaluates its last layer for the summary token alone.
    torch.manual_seed(4)
    layer = torch.nn.TransformerEncoderLayer(
        16, 2, 32, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    x = torch.randn(6, 8, 16)
    lengths = torch.tensor([8, 3, 6, 8, 1, 5]) if padded else torch.full((6,), 8)
    valid = torch.arange(8)[None, :] < lengths[:, None]
    bias = padding_bias(valid[:, 1:], 2) if padded else None
    with torch.no_grad():
        full = encoder_layer(layer, x, bias)[:, 0]
        ours = summary_layer(layer, x, bias)
    torch.testing.assert_close(ours, full, atol=1e-5, rtol=1e-5)
    # Padded keys are ignored: changing them does not change the summary token.
    if padded:
        y = x.clone()
        y[~valid] = 100.0
        with torch.no_grad():
            torch.testing.assert_close(summary_layer(layer, y, bias), ours, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        layer.linear2.weight.mul_(3.0)
        assert (summary_layer(layer, x, bias) - full).abs().max() > 1e-2


@pytest.mark.parametrize("n_layers", [1, 2])
def test_fitting_only_forward_matches_full_forward(cands: Candidates, n_layers: int) -> None:
    # quality=False (inference) takes the summary-token shortcut; same parameters.
    cfg = FeatureConfig()
    enc = encode(cands, cfg)
    torch.manual_seed(0)
    model = TrackFormer(cfg.n_hit_features, cfg.n_global_features, 32, 4, n_layers, 64).eval()
    torch.nn.init.normal_(model.param_head[-1].weight, std=0.3)
    batch = collate(enc, np.arange(len(enc)))
    with torch.no_grad():
        full = model(batch["hits"], batch["detector_id"], batch["mask"], batch["global"])
        fit = model(batch["hits"], batch["detector_id"], batch["mask"], batch["global"], False)
    assert set(fit) == {"params"}
    assert full["params"].abs().max() > 0.1
    torch.testing.assert_close(fit["params"], full["params"], atol=1e-5, rtol=1e-5)


def test_predict_matches_padded_mixed_length_batches(cands: Candidates) -> None:
    # predict() runs equal-length batches without a mask; a padded batch of all lengths
    # with the mask must give the same numbers.
    from lhcml.fitting.evaluate import predict

    cfg = FeatureConfig()
    model = _model(cfg).eval()
    torch.nn.init.normal_(model.param_head[-1].weight, std=0.3)
    # Candidates of many lengths: drop random hits beyond the first three.
    keep = np.random.default_rng(5).random(len(cands.hit_id)) < 0.7
    keep[cands.offsets[:-1, None] + np.arange(3)] = True
    cands = cands.with_hits(keep)
    enc = encode(cands, cfg)
    assert len(np.unique(enc.lengths)) > 4
    pred = predict(model, cfg, "gnll", cands, batch_size=3)
    batch = collate(enc, np.arange(len(enc)))
    with torch.no_grad():
        out = model(batch["hits"], batch["detector_id"], batch["mask"], batch["global"])
    mu, _sd = estimate(out["params"], "gnll")
    params = denormalise(mu.double().numpy(), enc.reference, enc.scale)
    np.testing.assert_allclose(pred.params, params, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        pred.cand_score, torch.sigmoid(out["cand_logit"]).numpy(), rtol=1e-4, atol=1e-6
    )
    hs = torch.sigmoid(out["hit_logit"]).numpy()[batch["mask"].numpy()]
    np.testing.assert_allclose(pred.hit_score, hs, rtol=1e-4, atol=1e-6)


def test_length_buckets_cover_every_candidate_once(cands: Candidates) -> None:
    enc = encode(cands, FeatureConfig())
    seen = []
    for b in length_buckets(enc, 4):
        assert b["mask"] is None and b["hits"].shape[0] <= 4
        lengths = enc.lengths[b["index"]]
        assert (lengths == b["hits"].shape[1]).all()
        np.testing.assert_array_equal(b["hits"].numpy(), enc.hit_features[b["rows"]])
        seen += b["index"].tolist()
    assert sorted(seen) == list(range(len(enc)))


def test_compiled_features_match_their_definition(cands: Candidates) -> None:
    # The numba pass (lhcml.fitting.features) against the dataset docstring's formulas
    # written out with numpy on top of the helix fit.
    from lhcml.fitting import geometry
    from lhcml.fitting.dataset import SEED_QOPT_FLOOR, SEED_SCALES
    from lhcml.fitting.helix import helix_fit_flat
    from lhcml.fitting.targets import wrap_angle

    enc = encode(cands, FeatureConfig(module_frames=False))
    xyz = cands.xyz
    lengths = cands.lengths
    seed, res = helix_fit_flat(xyz, cands.volume, cands.offsets)
    np.testing.assert_allclose(enc.reference, seed, rtol=1e-9, atol=1e-9)
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    first = np.repeat(cands.offsets[:-1], lengths)
    barrel = geometry.is_barrel(cands.volume)
    sig = geometry.hit_resolution(cands.volume)
    cot = np.repeat(1.0 / np.tan(seed[:, 1]), lengths)
    nt = res[:, 0] / sig[:, 0]
    nz = res[:, 1] / np.where(barrel, sig[:, 1], sig[:, 0] + sig[:, 1] * np.abs(cot))
    want = np.column_stack(
        [
            np.hypot(xyz[:, 0], xyz[:, 1]) / 1000.0,
            4.0 * wrap_angle(phi - phi[first]),
            xyz[:, 2] / 1000.0,
            np.zeros(len(xyz)),  # radial frames: no tilt
            np.arcsinh(nt / 2.0),
            np.arcsinh(nz / 2.0),
        ]
    )
    np.testing.assert_allclose(enc.hit_features, want, rtol=1e-5, atol=1e-6)
    rms_t = np.sqrt(np.bincount(cands.candidate_of_hit, nt**2) / lengths)
    np.testing.assert_allclose(enc.global_features[:, 6], np.log1p(rms_t), rtol=1e-5)
    np.testing.assert_allclose(enc.global_features[:, 5], lengths / 20.0, rtol=1e-6)
    np.testing.assert_allclose(
        enc.scale[:, 0], SEED_SCALES[0] * np.abs(seed[:, 0]) + SEED_QOPT_FLOOR, rtol=1e-12
    )
    # Endcap toys carry their measurement-frame feature only when the frame is tilted.
    assert (~barrel).any() and np.all(enc.hit_features[~barrel, 3] == 0.0)
