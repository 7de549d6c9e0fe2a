"""Particle Transformer: pair features, attention, masking, order invariance, weaver parity."""

from __future__ import annotations

import math

import pytest
import torch

from lhcml.errors import ConfigError
from lhcml.jets.models.part import (
    BiasedAttention,
    ParticleTransformer,
    attention,
    load_weaver_state_dict,
    pair_features,
)
from lhcml.jets.models.pfn import ParticleFlowNetwork

SMALL = {
    "embed_dims": (16, 32, 16),
    "pair_embed_dims": (8, 8),
    "num_heads": 2,
    "num_layers": 2,
    "num_cls_layers": 1,
}


def four_vector(pt: float, y: float, phi: float, m: float) -> list[float]:
    mt = math.sqrt(pt * pt + m * m)
    return [pt * math.cos(phi), pt * math.sin(phi), mt * math.sinh(y), mt * math.cosh(y)]


def test_pair_features_by_hand() -> None:
    # Particle a: pT 10, y 0.1, phi 0.2, massless; b: pT 5, y -0.2, phi -0.1, pion mass.
    a = (10.0, 0.1, 0.2, 0.0)
    b = (5.0, -0.2, -0.1, 0.13957)
    delta = math.hypot(0.1 - (-0.2), 0.2 - (-0.1))
    kt = 5.0 * delta
    z = 5.0 / 15.0
    mt_a, mt_b = 10.0, math.hypot(5.0, 0.13957)
    m2 = 0.13957**2 + 2 * (mt_a * mt_b * math.cosh(0.3) - 10.0 * 5.0 * math.cos(0.3))
    got = pair_features(
        torch.tensor([four_vector(*a)], dtype=torch.float64),
        torch.tensor([four_vector(*b)], dtype=torch.float64),
    )[0]
    want = [math.log(kt), math.log(z), math.log(delta), math.log(m2)]
    assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-9)
    # Symmetric in the pair.
    swapped = pair_features(
        torch.tensor([four_vector(*b)], dtype=torch.float64),
        torch.tensor([four_vector(*a)], dtype=torch.float64),
    )[0]
    assert swapped.tolist() == pytest.approx(want, rel=1e-9)


def test_pair_features_phi_wraps_and_self_pair() -> None:
    a = torch.tensor([four_vector(20.0, 0.0, 3.1, 0.0)], dtype=torch.float64)
    b = torch.tensor([four_vector(20.0, 0.0, -3.1, 0.0)], dtype=torch.float64)
    delta = 2 * math.pi - 6.2  # across the -pi / pi boundary
    assert pair_features(a, b)[0, 2].item() == pytest.approx(math.log(delta), rel=1e-9)
    # A particle with itself: Delta = kT = 0 -> ln(eps); z = 1/2; m^2 = 4 m^2 -> ln eps here.
    own = pair_features(a, a, eps=1e-8)[0]
    assert own.tolist() == pytest.approx(
        [math.log(1e-8), math.log(0.5), math.log(1e-8), math.log(1e-8)]
    )


def test_pair_features_match_weaver() -> None:
    weaver = pytest.importorskip("weaver.nn.model.ParticleTransformer")
    torch.manual_seed(0)
    pt = torch.rand(50) * 50 + 0.5
    rap, phi = torch.randn(50) * 0.4, torch.randn(50) * 0.4
    v = torch.tensor(
        [
            four_vector(float(a), float(b), float(c), 0.1)
            for a, b, c in zip(pt, rap, phi, strict=True)
        ]
    )
    i, j = torch.tril_indices(50, 50)
    ours = pair_features(v[i], v[j])
    ref = weaver.pairwise_lv_fts_pp(v[i].T[None], v[j].T[None], num_outputs=4)[0].T
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_attention_matches_reference_values_and_gradients() -> None:
    torch.manual_seed(1)
    b, h, n, d = 3, 2, 9, 4
    q, k, v = (torch.randn(b, h, n, d, dtype=torch.float64, requires_grad=True) for _ in range(3))
    bias = torch.randn(b, h, n, n, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(n)[None, :] < torch.tensor([9, 4, 1])[:, None]
    masked = bias.masked_fill(~mask[:, None, None, :], float("-inf"))
    ref = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + masked, -1) @ v
    out = attention(q, k, v, masked, 0.0)  # bias needs grad: BiasedAttention
    torch.testing.assert_close(out, ref)
    g_out = torch.randn_like(ref)
    g_ref = torch.autograd.grad(ref, (q, k, v, bias), g_out, retain_graph=True)
    g = torch.autograd.grad(out, (q, k, v, bias), g_out)
    for a_, b_ in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a_, b_)
    # Without a bias gradient: scaled_dot_product_attention with the float mask.
    with torch.no_grad():
        torch.testing.assert_close(attention(q, k, v, masked, 0.0), ref)
    small = [t.detach()[:1, :1, :4, :3].clone().requires_grad_(True) for t in (q, k, v)]
    small_bias = bias.detach()[:1, :1, :4, :4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda *a: BiasedAttention.apply(a[0][0], a[1][0], a[2][0], a[3][0], 0.0),
        (*small, small_bias),
    )


def _jets(b: int = 6, length: int = 24, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (b,), generator=g)
    lengths[0] = length
    mask = torch.arange(length)[None, :] < lengths[:, None]
    x = torch.randn(b, length, 13, generator=g) * mask[..., None]
    pt = torch.rand(b, length, generator=g) * 40 + 0.5
    eta = torch.randn(b, length, generator=g) * 0.3
    phi = torch.randn(b, length, generator=g) * 0.3
    v = torch.stack(
        [pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta), pt * torch.cosh(eta)], -1
    )
    return x, v * mask[..., None], mask


@pytest.mark.parametrize("model_cls", [ParticleTransformer, ParticleFlowNetwork])
def test_order_invariance(model_cls: type) -> None:
    torch.manual_seed(0)
    model = model_cls(**SMALL) if model_cls is ParticleTransformer else model_cls()
    model.eval()
    x, v, mask = _jets()
    with torch.no_grad():
        ref = model(x, v, mask)
        # Any permutation of the positions (padding interleaved with particles).
        perm = torch.randperm(x.shape[1])
        out = model(x[:, perm], v[:, perm], mask[:, perm])
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_padding_does_not_change_outputs() -> None:
    torch.manual_seed(0)
    model = ParticleTransformer(**SMALL, dropout=0.0, attn_dropout=0.0, activation_dropout=0.0)
    x, v, mask = _jets()
    # Longer padding filled with garbage: masked entries must not matter.
    pad = 9
    xp = torch.cat([x, torch.randn(x.shape[0], pad, 13) * 100], 1)
    vp = torch.cat([v, torch.rand(v.shape[0], pad, 4) * 100], 1)
    mp = torch.cat([mask, torch.zeros(mask.shape[0], pad, dtype=torch.bool)], 1)
    xp[:, : x.shape[1]][~mask] = 7.0
    vp[:, : v.shape[1]][~mask] = 3.0
    for train_mode in (False, True):  # also batch-norm statistics in training mode
        model.train(train_mode)
        with torch.no_grad():
            torch.testing.assert_close(model(xp, vp, mp), model(x, v, mask), rtol=1e-4, atol=1e-5)
    # A jet alone gives what it gives inside a batch (eval mode).
    model.eval()
    with torch.no_grad():
        one = model(x[2:3], v[2:3], mask[2:3])
        torch.testing.assert_close(one, model(x, v, mask)[2:3], rtol=1e-4, atol=1e-5)


def test_padding_gets_no_gradient_and_pair_bias_learns() -> None:
    torch.manual_seed(0)
    model = ParticleTransformer(**SMALL)
    model.train()
    x, v, mask = _jets()
    x = x.clone().requires_grad_(True)
    model(x, v, mask).sum().backward()
    assert torch.all(x.grad[~mask] == 0)
    assert x.grad[mask].abs().sum() > 0
    pair_w = model.pair_embed.embed[1].weight.grad
    assert pair_w is not None and pair_w.abs().sum() > 0


def test_default_architecture_is_the_paper() -> None:
    model = ParticleTransformer(input_dim=17, num_classes=10)
    assert len(model.blocks) == 8 and len(model.cls_blocks) == 2
    assert model.num_heads == 8
    # ParT on JetClass: 2.14 M parameters (kinematics + ID + trajectory inputs).
    n = sum(p.numel() for p in model.parameters())
    assert 2.10e6 < n < 2.16e6
    with pytest.raises(ConfigError, match="divisible"):
        ParticleTransformer(embed_dims=(30,), num_heads=8)


def test_same_function_as_weaver_part() -> None:
    """weaver-core's ParticleTransformer (version 1) weights in our model: same outputs."""
    weaver = pytest.importorskip("weaver.nn.model.ParticleTransformer")
    import logging

    logging.getLogger("weaver").setLevel(logging.WARNING)
    torch.manual_seed(3)
    ref = weaver.ParticleTransformer(input_dim=13, num_classes=3, fc_params=[], **SMALL)
    with torch.no_grad():  # non-trivial scales and batch-norm statistics
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, buf in ref.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
    ours = ParticleTransformer(input_dim=13, num_classes=3, input_bn=True, **SMALL)
    load_weaver_state_dict(ours, ref.state_dict())
    ref.eval()
    ours.eval()
    x, v, mask = _jets()
    with torch.no_grad():
        want = ref(x.transpose(1, 2), v.transpose(1, 2), mask[:, None].float())
        got = ours(x, v, mask)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="do not fit"):
        load_weaver_state_dict(
            ParticleTransformer(input_dim=13, num_classes=3, **SMALL), ref.state_dict()
        )


def test_mixed_precision_training_step() -> None:
    """Under autocast (bf16 on CPU here; fp16 AMP on GPUs) a training step runs and the
    pair bias gets a finite gradient."""
    torch.manual_seed(0)
    model = ParticleTransformer(**SMALL)
    x, v, mask = _jets()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(x, v, mask)
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.zeros(len(x), dtype=torch.long))
    loss.backward()
    grad = model.pair_embed.embed[1].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_eval_folding_equals_batch_norm_layers() -> None:
    """Eval mode folds the pair embedding's batch norms into the linear layers."""
    from lhcml.jets.models.part import PairEmbed

    torch.manual_seed(2)
    pe = PairEmbed(4, (8, 8), num_heads=3)
    with torch.no_grad():
        for m in pe.embed:
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    pe.eval()
    _, v, mask = _jets()
    with torch.no_grad():
        bias = pe(v, mask)
        feats = pair_features(v[0, :5, None, :], v[0, None, :5, :])  # jet 0: 5 x 5 pairs
        want = pe.embed(feats.reshape(-1, 4)).reshape(5, 5, 3).permute(2, 0, 1)
    torch.testing.assert_close(bias[0, :, :5, :5], want, rtol=1e-4, atol=1e-4)
    assert torch.isinf(bias[~mask[:, None, None, :].expand_as(bias)]).all()
