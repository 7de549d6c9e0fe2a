"""Particle Transformer (ParT) for jet tagging, a pure ``nn.Module``.

Qu, Li, Qian, "Particle Transformer for Jet Tagging", ICML 2022 (arXiv:2202.03772):

1. particle embedding: an MLP (LayerNorm -> Linear -> GELU per layer, widths
   ``embed_dims``) applied to each particle's features;
2. interaction embedding: for every pair of particles the four features
   ``ln kT, ln z, ln Delta, ln m^2`` (:func:`pair_features`) go through pointwise layers
   (BatchNorm, widths ``pair_embed_dims``, GELU) to one number per attention head, which
   is added to the attention logits of every particle-attention block;
3. ``num_layers`` particle-attention blocks (pre-LN NormFormer blocks: LayerNorm before
   and after attention and inside the MLP, learned per-head and residual scales);
4. ``num_cls_layers`` class-attention blocks: a class token attends to the particles;
5. LayerNorm and a linear classifier on the class token.

Padded particles are excluded everywhere: they are never keys in attention, get no pair
features and are not in the BatchNorm statistics of the interaction embedding, so the
output does not depend on padding or on the order of the particles.

Speed (CPU and GPU): batches are trimmed to their longest jet; pair features are
computed and embedded only for the ``i >= j`` pairs of real particles (a jet of n
particles costs n(n+1)/2 pairs, not ``L^2``) and mirrored; attention runs through
:func:`torch.nn.functional.scaled_dot_product_attention` with the pair bias as a float
mask (fused kernels where the backend has them); training uses :class:`BiasedAttention`,
which returns the gradient of the bias without the generic fallback's extra copies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lhcml.errors import ConfigError


def pair_features(vi: Tensor, vj: Tensor, eps: float = 1e-8) -> Tensor:
    """The ParT interaction features of particle pairs.

    With pT, rapidity y and azimuth phi of each particle,
    ``Delta = sqrt((y_i - y_j)^2 + (phi_i - phi_j)^2)`` (phi wrapped),
    ``kT = min(pT_i, pT_j) Delta``, ``z = min(pT_i, pT_j) / (pT_i + pT_j)`` and
    ``m^2 = (E_i + E_j)^2 - |p_i + p_j|^2``; the logarithms are taken of values clamped
    to at least ``eps`` (so a particle paired with itself gives ``ln eps`` for Delta, kT
    and a small mass).

    Args:
        vi, vj: ``(..., 4)`` four-momenta ``px, py, pz, E`` [GeV].
        eps: clamp of the logarithms' arguments.

    Returns:
        ``(..., 4)``: ``ln kT, ln z, ln Delta, ln m^2``.
    """
    pti, yi, phii = _pt_rap_phi(vi)
    ptj, yj, phij = _pt_rap_phi(vj)
    return _pair_from_kinematics(vi, vj, pti, yi, phii, ptj, yj, phij, eps)


def _pt_rap_phi(v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    px, py, pz, e = v.unbind(-1)
    pt = torch.sqrt(px * px + py * py)
    # y = 1/2 ln((E + pz) / (E - pz)) written as log1p for precision at small pz.
    rap = 0.5 * torch.log1p(2 * pz / (e - pz).clamp(min=1e-20))
    return pt, rap, torch.atan2(py, px)


def _pair_from_kinematics(
    vi: Tensor,
    vj: Tensor,
    pti: Tensor,
    yi: Tensor,
    phii: Tensor,
    ptj: Tensor,
    yj: Tensor,
    phij: Tensor,
    eps: float,
) -> Tensor:
    dphi = torch.remainder(phii - phij + math.pi, 2 * math.pi) - math.pi
    delta = torch.sqrt((yi - yj) ** 2 + dphi**2)
    ptmin = torch.minimum(pti, ptj)
    lnkt = torch.log((ptmin * delta).clamp(min=eps))
    lnz = torch.log((ptmin / (pti + ptj).clamp(min=eps)).clamp(min=eps))
    lndelta = torch.log(delta.clamp(min=eps))
    s = vi + vj
    m2 = s[..., 3] ** 2 - (s[..., :3] ** 2).sum(-1)
    lnm2 = torch.log(m2.clamp(min=eps))
    return torch.stack([lnkt, lnz, lndelta, lnm2], dim=-1)


class BiasedAttention(torch.autograd.Function):
    """``dropout(softmax(q k^T / sqrt(d) + bias)) v`` with a gradient for ``bias``.

    PyTorch's fused CPU/GPU attention kernels do not return the gradient of a float
    mask, so ``scaled_dot_product_attention`` falls back to its generic ("math") path
    when the mask requires grad. This function keeps only the attention probabilities
    (and the dropout mask) for the backward pass and computes the gradients in place:
    with ``delta = rowsum(dO * O)`` (equal to ``rowsum(dP * P)``, dropout included),
    ``dS = P * (dP - delta)`` is both the bias gradient and the input of the q and k
    gradients.

    Shapes:
        q: ``(N, L, D)``, k, v: ``(N, S, D)``, bias: ``(N, L, S)`` -> ``(N, L, D)``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, dropout_p: float = 0.0
    ) -> Tensor:
        scale = q.shape[-1] ** -0.5
        p = torch.softmax(torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale), dim=-1)
        if dropout_p > 0.0:
            keep = 1.0 - dropout_p
            # P with dropout applied and rescaled (rand < keep: cheaper than bernoulli_).
            pd = torch.where(torch.rand_like(p) < keep, p, 0.0).mul_(1.0 / keep)
        else:
            pd = p
        out = torch.bmm(pd, v)
        ctx.save_for_backward(q, k, v, p, pd, out)
        ctx.scale = scale
        ctx.dropout = dropout_p > 0.0
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        q, k, v, p, pd, out = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_v = torch.bmm(pd.transpose(1, 2), grad_out)
        dp = torch.bmm(grad_out, v.transpose(1, 2))  # d(loss)/d(P after dropout)
        delta = (grad_out * out).sum(-1, keepdim=True)
        if ctx.dropout:
            # dS = P * (dP * M / keep - delta) = dP * Pd - P * delta, in place.
            ds = dp.mul_(pd).addcmul_(p, delta.expand_as(p), value=-1.0)
        else:
            ds = dp.sub_(delta).mul_(p)  # dS = P * (dP - delta)
        grad_q = torch.bmm(ds, k).mul_(ctx.scale)
        grad_k = torch.bmm(ds.transpose(1, 2), q).mul_(ctx.scale)
        return grad_q, grad_k, grad_v, ds, None


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, dropout_p: float) -> Tensor:
    """Multi-head attention core with an additive float bias.

    Uses :class:`BiasedAttention` when the bias needs a gradient (training with a learned
    pair bias), else ``scaled_dot_product_attention`` (fused kernels).

    Shapes:
        q: ``(B, H, L, D)``, k, v: ``(B, H, S, D)``, bias: broadcastable to
        ``(B, H, L, S)`` (``-inf`` masks a key) -> ``(B, H, L, D)``.
    """
    if (
        bias is not None
        and bias.requires_grad
        and bias.dim() == 4
        and bias.shape[:2] == q.shape[:2]
    ):
        b, h, lq, d = q.shape
        s = k.shape[2]
        # One dtype inside (under AMP: that of q, the projections' lower precision), with
        # autocast off so forward and backward agree; autograd casts the gradients back.
        dtype = q.dtype
        with torch.autocast(device_type=q.device.type, enabled=False):
            out = BiasedAttention.apply(
                q.reshape(b * h, lq, d),
                k.reshape(b * h, s, d).to(dtype),
                v.reshape(b * h, s, d).to(dtype),
                bias.reshape(b * h, lq, s).to(dtype),
                dropout_p,
            )
        return out.view(b, h, lq, d)
    if bias is not None and bias.dtype != q.dtype:
        bias = bias.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention with per-head output scales (NormFormer).

    Args:
        embed_dim: model width (divisible by ``num_heads``).
        num_heads: attention heads.
        attn_dropout: dropout on the attention probabilities (training only).
        scale_heads: learn one scale per head, applied before the output projection.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0, scale_heads: bool = True
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ConfigError(
                f"embed_dims[-1] = {embed_dim} is not divisible by num_heads = {num_heads}"
            )
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.attn_dropout = attn_dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.kv_proj = nn.Linear(embed_dim, 2 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.head_scale = nn.Parameter(torch.ones(num_heads)) if scale_heads else None

    def forward(self, query: Tensor, key: Tensor, bias: Tensor | None) -> Tensor:
        """Shapes: query ``(B, L, E)``, key ``(B, S, E)``, bias ``(B or 1, H or 1, L, S)``."""
        b, lq, e = query.shape
        s = key.shape[1]
        h, d = self.num_heads, self.head_dim
        if query is key:
            # Self-attention: one projection for q, k and v.
            w = torch.cat([self.q_proj.weight, self.kv_proj.weight])
            bb = torch.cat([self.q_proj.bias, self.kv_proj.bias])
            q, k, v = F.linear(query, w, bb).view(b, lq, 3, h, d).permute(2, 0, 3, 1, 4)
        else:
            q = self.q_proj(query).view(b, lq, h, d).transpose(1, 2)
            k, v = self.kv_proj(key).view(b, s, 2, h, d).permute(2, 0, 3, 1, 4)
        dropout = self.attn_dropout if self.training else 0.0
        out = attention(q, k, v, bias, dropout)  # (B, H, L, D)
        out = out.transpose(1, 2).reshape(b, lq, e)
        if self.head_scale is None:
            return self.out_proj(out)
        # Per-head scales folded into the output projection (one pass less).
        w = self.out_proj.weight * self.head_scale.repeat_interleave(d)[None, :]
        return F.linear(out, w, self.out_proj.bias)


class Block(nn.Module):
    """A NormFormer transformer block, as in ParT.

    ``x + LN(MHA(LN(x)))`` then ``w * x + FC2(LN(GELU(FC1(LN(x)))))``; for class attention
    the query is the class token and keys / values are ``LN([cls, x])``.

    Args:
        embed_dim, num_heads: width and heads.
        ffn_ratio: hidden width of the MLP over ``embed_dim``.
        dropout: after attention and after the MLP.
        attn_dropout: on the attention probabilities.
        activation_dropout: after the MLP activation.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        ffn_ratio: int = 4,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
        activation_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        ffn = embed_dim * ffn_ratio
        self.pre_attn_norm = nn.LayerNorm(embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads, attn_dropout)
        self.post_attn_norm = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.pre_fc_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn)
        self.act = nn.GELU()
        self.act_dropout = nn.Dropout(activation_dropout)
        self.post_fc_norm = nn.LayerNorm(ffn)
        self.fc2 = nn.Linear(ffn, embed_dim)
        self.resid_scale = nn.Parameter(torch.ones(embed_dim))

    def forward(self, x: Tensor, bias: Tensor | None, x_cls: Tensor | None = None) -> Tensor:
        """Shapes: x ``(B, L, E)``, bias ``(B, H, L, L)`` or for class attention
        ``(B, 1, 1, 1 + L)``, x_cls ``(B, 1, E)`` -> like x (or x_cls)."""
        if x_cls is None:
            residual = x
            y = self.pre_attn_norm(x)
            y = self.attn(y, y, bias)
        else:
            # As in the ParT reference implementation, the query is the class token
            # itself; keys and values are the normalised [cls, particles].
            residual = x_cls
            u = self.pre_attn_norm(torch.cat([x_cls, x], dim=1))
            y = self.attn(x_cls, u, bias)
        y = residual + self.dropout(self.post_attn_norm(y))
        residual = y
        z = self.act_dropout(self.act(self.fc1(self.pre_fc_norm(y))))
        z = self.dropout(self.fc2(self.post_fc_norm(z)))
        return z + self.resid_scale * residual


class PairEmbed(nn.Module):
    """Pair features -> one attention bias per head, for real particle pairs only.

    ``BatchNorm(4) -> [Linear -> BatchNorm -> GELU] per width in dims -> Linear ->
    BatchNorm`` on each pair (ParT's pointwise convolutions). The linear layers have no
    bias: the batch norm after each removes it anyway. In eval mode every batch norm is
    folded into the neighbouring linear layer (same function, half the passes over the
    pairs).

    Args:
        input_dim: pair features (4: ``ln kT, ln z, ln Delta, ln m^2``).
        dims: hidden widths.
        num_heads: output width (no activation after the last batch norm).
        eps: clamp of :func:`pair_features`.
    """

    def __init__(
        self, input_dim: int, dims: Sequence[int], num_heads: int, eps: float = 1e-8
    ) -> None:
        super().__init__()
        if input_dim != 4:
            raise ConfigError(f"pair_input_dim: only the 4 ParT features exist, got {input_dim}")
        self.eps = eps
        self.num_heads = num_heads
        layers: list[nn.Module] = [nn.BatchNorm1d(input_dim)]
        width = input_dim
        for dim in dims:
            layers += [nn.Linear(width, dim, bias=False), nn.BatchNorm1d(dim), nn.GELU()]
            width = dim
        layers += [nn.Linear(width, num_heads, bias=False), nn.BatchNorm1d(num_heads)]
        self.embed = nn.Sequential(*layers)

    def folded(self) -> list[tuple[Tensor, Tensor]]:
        """``(weight, bias)`` of each linear layer with the batch norms (running
        statistics) folded in: the eval-mode function as Linear (-> GELU) layers."""
        mods = list(self.embed)
        bn0 = mods[0]
        s0 = bn0.weight / torch.sqrt(bn0.running_var + bn0.eps)
        shift = bn0.bias - bn0.running_mean * s0  # input BN: x -> x * s0 + shift
        scale_in = s0
        out = []
        for k in range(1, len(mods), 3):
            lin, bn = mods[k], mods[k + 1]
            w = lin.weight * scale_in[None, :]
            b = lin.weight @ shift
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out.append((w * s[:, None], (b - bn.running_mean) * s + bn.bias))
            scale_in = torch.ones_like(s)
            shift = torch.zeros_like(s)
        return out

    def forward(self, v: Tensor, mask: Tensor) -> Tensor:
        """Attention bias with padded keys masked.

        Shapes:
            v: ``(B, L, 4)``, mask: ``(B, L)`` bool -> ``(B, H, L, L)``; entry
            ``[b, h, i, j]`` is the bias of query i attending to key j, ``-inf`` where j
            is padding.
        """
        if torch.compiler.is_exporting():
            return self._dense(v, mask)
        b, length, _ = v.shape
        rows, cols = torch.tril_indices(length, length, device=v.device)
        valid = mask[:, rows] & mask[:, cols]  # (B, L(L+1)/2)
        jet, pair = valid.nonzero(as_tuple=True)
        ii, jj = rows[pair], cols[pair]
        # Kinematics once per particle (float32 even under autocast: logs of small
        # differences), packed so each side of the pairs is one gather.
        with torch.autocast(device_type=v.device.type, enabled=False):
            v32 = v.float()
            pt, rap, phi = _pt_rap_phi(v32)
            kin = torch.cat([v32, pt[..., None], rap[..., None], phi[..., None]], -1)
            kin = kin.view(b * length, 7)
            ki, kj = kin[jet * length + ii], kin[jet * length + jj]
            feats = _pair_from_kinematics(
                ki[:, :4],
                kj[:, :4],
                ki[:, 4],
                ki[:, 5],
                ki[:, 6],
                kj[:, 4],
                kj[:, 5],
                kj[:, 6],
                self.eps,
            )
        if self.training:
            emb = self.embed(feats)  # (n_pairs, H)
        else:
            emb = feats
            layers = self.folded()
            for k, (w, bb) in enumerate(layers):
                emb = torch.addmm(bb.to(emb.dtype), emb, w.t().to(emb.dtype))
                if k < len(layers) - 1:
                    emb = F.gelu(emb)
        # Padded keys -inf, real pairs their embedding (mirrored: the features are
        # symmetric); pairs with a padded query stay 0.
        key_mask = torch.zeros(b, 1, 1, length, dtype=emb.dtype, device=emb.device)
        key_mask.masked_fill_(~mask[:, None, None, :], float("-inf"))
        bias = key_mask.expand(b, self.num_heads, length, length).clone()
        bias[jet, :, ii, jj] = emb
        off = ii != jj
        bias[jet[off], :, jj[off], ii[off]] = emb[off]
        return bias

    def _dense(self, v: Tensor, mask: Tensor) -> Tensor:
        """:meth:`forward` over all L x L pairs, without data-dependent shapes (ONNX
        export: the sparse path's ``nonzero`` and ``tril_indices`` fix the particle count).
        Same bias up to float rounding; more work on padded pairs."""
        b, length, _ = v.shape
        v32 = v.float()
        pt, rap, phi = _pt_rap_phi(v32)
        full = (b, length, length)
        feats = _pair_from_kinematics(
            v32[:, :, None, :].expand(*full, 4),
            v32[:, None, :, :].expand(*full, 4),
            pt[:, :, None].expand(full),
            rap[:, :, None].expand(full),
            phi[:, :, None].expand(full),
            pt[:, None, :].expand(full),
            rap[:, None, :].expand(full),
            phi[:, None, :].expand(full),
            self.eps,
        ).reshape(-1, 4)
        layers = self.folded()
        emb = feats
        for k, (w, bb) in enumerate(layers):
            emb = torch.addmm(bb, emb, w.t())
            if k < len(layers) - 1:
                emb = F.gelu(emb)
        emb = emb.view(b, length, length, -1).permute(0, 3, 1, 2)  # (B, H, L, L)
        valid = (mask[:, :, None] & mask[:, None, :])[:, None]
        key_mask = torch.zeros(b, 1, 1, length, dtype=emb.dtype, device=emb.device)
        key_mask = key_mask.masked_fill(~mask[:, None, None, :], float("-inf"))
        return torch.where(valid, emb, torch.zeros_like(emb)) + key_mask


class ParticleTransformer(nn.Module):
    """Particle Transformer jet tagger (defaults: the architecture of the paper).

    Args:
        input_dim: particle features per particle (13 for
            :data:`lhcml.jets.dataset.PARTICLE_FEATURES`).
        num_classes: output classes.
        embed_dims: particle-embedding MLP widths; the last is the model width.
        pair_input_dim: pair features (4).
        pair_embed_dims: interaction-embedding widths (None: no pair bias, a plain
            transformer).
        num_heads: attention heads.
        num_layers: particle-attention blocks.
        num_cls_layers: class-attention blocks.
        ffn_ratio: MLP width over model width in the blocks.
        dropout, attn_dropout, activation_dropout: dropout of the particle-attention
            blocks (class-attention blocks use none, as in ParT).
        fc_params: ``[[width, dropout], ...]`` hidden layers of the classifier head.
        input_bn: BatchNorm of the input features (statistics over real particles
            only), as weaver's ParT has; off by default (lhcml standardises inputs).
        trim: cut a batch to its longest jet before running (exact; saves time).

    Shapes:
        x: ``(B, L, input_dim)``, v: ``(B, L, 4)`` ``px, py, pz, E``, mask: ``(B, L)``
        bool -> logits ``(B, num_classes)``.
    """

    def __init__(
        self,
        input_dim: int = 13,
        num_classes: int = 2,
        embed_dims: Sequence[int] = (128, 512, 128),
        pair_input_dim: int = 4,
        pair_embed_dims: Sequence[int] | None = (64, 64, 64),
        num_heads: int = 8,
        num_layers: int = 8,
        num_cls_layers: int = 2,
        ffn_ratio: int = 4,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
        activation_dropout: float = 0.1,
        fc_params: Sequence[Sequence[float]] = (),
        input_bn: bool = False,
        trim: bool = True,
    ) -> None:
        super().__init__()
        if not embed_dims:
            raise ConfigError("embed_dims: need at least one width")
        if num_layers < 0 or num_cls_layers < 1:
            raise ConfigError(
                f"num_layers >= 0 and num_cls_layers >= 1 needed, got {num_layers}, "
                f"{num_cls_layers}"
            )
        self.trim = trim
        self.num_heads = num_heads
        embed_dim = int(embed_dims[-1])
        self.input_bn = nn.BatchNorm1d(input_dim) if input_bn else None
        layers: list[nn.Module] = []
        width = input_dim
        for dim in embed_dims:
            layers += [nn.LayerNorm(width), nn.Linear(width, int(dim)), nn.GELU()]
            width = int(dim)
        self.embed = nn.Sequential(*layers)
        self.pair_embed = (
            PairEmbed(pair_input_dim, [int(d) for d in pair_embed_dims], num_heads)
            if pair_embed_dims is not None
            else None
        )
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, ffn_ratio, dropout, attn_dropout, activation_dropout)
            for _ in range(num_layers)
        )
        self.cls_blocks = nn.ModuleList(
            Block(embed_dim, num_heads, ffn_ratio, 0.0, 0.0, 0.0) for _ in range(num_cls_layers)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.norm = nn.LayerNorm(embed_dim)
        head: list[nn.Module] = []
        width = embed_dim
        for params in fc_params:
            dim, drop = int(params[0]), float(params[1])
            head += [nn.Linear(width, dim), nn.ReLU(), nn.Dropout(drop)]
            width = dim
        head.append(nn.Linear(width, num_classes))
        self.fc = nn.Sequential(*head)
        self._init_weights()

    def _init_weights(self) -> None:
        # MoCo v3 / ViT initialisation as in ParT: Xavier-uniform linear layers, zero
        # biases, a small class token, and residual branches of deep blocks scaled down.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        with torch.no_grad():
            for layer_id, block in enumerate(self.blocks, start=1):
                block.attn.out_proj.weight.div_(math.sqrt(2.0 * layer_id))
                block.fc2.weight.div_(math.sqrt(2.0 * layer_id))

    def forward(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        exporting = torch.compiler.is_exporting()  # no data-dependent shapes in ONNX
        if self.trim and mask.shape[1] > 0 and not exporting:
            # Drop trailing columns that are padding in every jet (exact).
            used = mask.any(0).nonzero()
            length = int(used.max()) + 1 if len(used) else 1
            if length < mask.shape[1]:
                x, v, mask = x[:, :length], v[:, :length], mask[:, :length]
        if self.input_bn is not None and exporting:
            # Eval-mode batch norm is per-feature affine: all rows, then zero the padding.
            normed = self.input_bn(x.reshape(-1, x.shape[-1])).view_as(x)
            x = torch.where(mask[..., None], normed, torch.zeros_like(x))
        elif self.input_bn is not None:
            x = torch.zeros_like(x).index_put((mask,), self.input_bn(x[mask]))
        h = self.embed(x) * mask.unsqueeze(-1)
        if self.pair_embed is not None:
            bias = self.pair_embed(v, mask)
        else:
            bias = torch.zeros(
                mask.shape[0], 1, 1, mask.shape[1], dtype=h.dtype, device=h.device
            ).masked_fill(~mask[:, None, None, :], float("-inf"))
        if bias.dtype != h.dtype:
            bias = bias.to(h.dtype)  # (autocast: the blocks run in lower precision)
        for block in self.blocks:
            h = block(h, bias)
        # Class attention: the class token (always a valid key) attends to particles.
        cls_mask = F.pad(~mask, (1, 0), value=False)
        cls_bias = torch.zeros(
            mask.shape[0], 1, 1, mask.shape[1] + 1, dtype=h.dtype, device=h.device
        ).masked_fill(cls_mask[:, None, None, :], float("-inf"))
        cls = self.cls_token.expand(h.shape[0], -1, -1).to(h.dtype)
        for block in self.cls_blocks:
            cls = block(h, cls_bias, x_cls=cls)
        return self.fc(self.norm(cls.squeeze(1)))


def load_weaver_state_dict(model: ParticleTransformer, state: dict[str, Tensor]) -> None:
    """Load the weights of weaver-core's ``ParticleTransformer`` (``version=1``).

    The two models compute the same function: weaver's packed ``in_proj`` is split into
    ``q_proj`` / ``kv_proj``, its pointwise ``Conv1d`` become ``Linear`` (their biases,
    followed by batch norms, move into the running means), and its per-head
    scale ``c_attn`` (which weaver applies after the output projection, on chunks of the
    output) is folded into ``out_proj``. ``model`` needs the same sizes and
    ``input_bn=True`` if the weaver model normalised its inputs.

    Args:
        model: the target model.
        state: ``weaver_model.state_dict()``.

    Raises:
        ConfigError: the sizes do not match.
    """
    own = model.state_dict()
    new: dict[str, Tensor] = {}
    heads = model.num_heads
    for key, value in state.items():
        k = key
        for old, repl in (("embed.input_bn.", "input_bn."), ("embed.embed.", "embed.")):
            if k.startswith(old):
                k = repl + k[len(old) :]
        if k.startswith("pair_embed.embed."):
            idx = int(k.split(".")[2])
            if (
                k.endswith(".bias")
                and f"pair_embed.embed.{idx}.weight" in state
                and state[f"pair_embed.embed.{idx}.weight"].dim() == 3
            ):
                continue  # conv bias: folded into the next batch norm's running mean
            if k.endswith(".running_mean"):
                conv_bias = state.get(f"pair_embed.embed.{idx - 1}.bias")
                conv_w = state.get(f"pair_embed.embed.{idx - 1}.weight")
                if conv_bias is not None and conv_w is not None and conv_w.dim() == 3:
                    value = value - conv_bias  # BN(Wx + b) with mean m == BN(Wx) with m - b
            new[k] = value.squeeze(-1) if value.dim() == 3 else value
            continue
        for prefix in ("blocks.", "cls_blocks."):
            if not k.startswith(prefix):
                continue
            block, _, rest = k[len(prefix) :].partition(".")
            base = f"{prefix}{block}."
            if rest in ("attn.in_proj.weight", "attn.in_proj.bias"):
                kind = rest.rsplit(".", 1)[1]
                e = value.shape[0] // 3
                new[f"{base}attn.q_proj.{kind}"] = value[:e]
                new[f"{base}attn.kv_proj.{kind}"] = value[e:]
            elif rest.startswith("attn.out_proj."):
                c = state.get(f"{key.split('.attn.')[0]}.c_attn")
                scale = (
                    torch.ones(value.shape[0])
                    if c is None
                    else c.repeat_interleave(value.shape[0] // heads)
                )
                new[f"{base}{rest}"] = value * (scale[:, None] if value.dim() == 2 else scale)
            elif rest == "c_attn":
                new[f"{base}attn.head_scale"] = torch.ones_like(value)
            elif rest == "w_resid":
                new[f"{base}resid_scale"] = value
            else:
                new[f"{base}{rest}"] = value
            break
        else:
            new[k] = value
    missing = set(own) - set(new)
    unexpected = set(new) - set(own)
    if missing or unexpected:
        raise ConfigError(
            "weaver ParT weights do not fit this model: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    try:
        model.load_state_dict(new)
    except RuntimeError as e:
        raise ConfigError(f"weaver ParT weights do not fit this model: {e}") from e
