"""MaskFormer track finding networks (pure ``nn.Module``; ``__init__`` arguments = YAML keys).

After hepattn's tracker (Van Stroud et al., "Transformers for charged particle track
reconstruction in high energy physics", https://arxiv.org/abs/2411.07149): a hit filter
(transformer encoder over hits sorted in phi, sliding-window attention, one logit per hit)
keeps the hits of pT > 1 GeV candidates; a MaskFormer (encoder + decoder with learned track
queries, https://arxiv.org/abs/2107.06278 and the masked attention of Mask2Former,
https://arxiv.org/abs/2112.01527) predicts one hit mask and one "is a track" logit per query.

Attention is :func:`torch.nn.functional.scaled_dot_product_attention` (it takes the
flash / memory-efficient kernels itself on a GPU). The sliding window is block-local: hits
sorted in phi are cut into blocks of ``window`` hits, each block attends to itself and its
two neighbours (circularly, phi wraps), so every hit sees at least ``window`` hits on each
side at ``O(N * 3 window)`` cost instead of ``O(N^2)``.

Shapes (one event or wedge at a time, batch 1 as in hepattn):
    hits ``(N, F)`` features of :func:`lhcml.reco.maskformer.data.hit_features`;
    filter logits ``(N,)``; track logits ``(Q,)``; mask logits ``(Q, N)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None
) -> torch.Tensor:
    """Block-local attention over a circular sequence.

    Args:
        q, k, v: ``(H, N, D)`` heads of a sequence sorted in phi.
        window: block length; ``None`` or ``N <= 3 * window``: full attention.

    Returns:
        ``(H, N, D)``.
    """
    h, n, d = q.shape
    if window is None or n <= 3 * window:
        return F.scaled_dot_product_attention(q, k, v)
    nb = math.ceil(n / window)
    pad = nb * window - n

    def blocks(t: torch.Tensor) -> torch.Tensor:
        # Circular padding (the sequence's first hits again) rather than a key mask: a
        # boolean mask drops SDPA on CPU from its fused kernel to the math path (15x
        # slower here); the padded queries are discarded, the padded keys are real hits
        # seen twice by the last and first blocks.
        if pad:
            t = torch.cat([t, t[:, :pad]], dim=1)
        return t.view(h, nb, window, d)

    qb, kb, vb = blocks(q), blocks(k), blocks(v)

    def around(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.roll(1, dims=1), t, t.roll(-1, dims=1)], dim=2)

    out = F.scaled_dot_product_attention(qb, around(kb), around(vb))
    return out.reshape(h, nb * window, d)[:, :n]


class Attention(nn.Module):
    """Multi-head attention of ``x`` on ``context`` (self-attention when it is ``None``).

    Args:
        dim: model width.
        heads: attention heads.
        window: sliding-window block length for self-attention (``None``: full).
    """

    def __init__(self, dim: int, heads: int, window: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.window = window
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n, dim = x.shape
        hd = dim // self.heads
        q = self.q(x).view(n, self.heads, hd).transpose(0, 1)
        src = x if context is None else context
        k, v = self.kv(src).view(len(src), 2, self.heads, hd).permute(1, 2, 0, 3)
        if context is None and attn_mask is None:
            o = window_attention(q, k, v, self.window)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(o.transpose(0, 1).reshape(n, dim))


def _ffn(dim: int, mult: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer with sliding-window self-attention."""

    def __init__(self, dim: int, heads: int, window: int | None, ff_mult: int = 2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = _ffn(dim, ff_mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class HitEncoder(nn.Module):
    """Input MLP + ``layers`` windowed transformer layers over phi-sorted hits.

    Args:
        in_features: hit features (:func:`lhcml.reco.maskformer.data.n_features`).
        dim: model width.
        layers: encoder layers.
        heads: attention heads.
        window: sliding-window block length (``None``: full attention).
        ff_mult: feed-forward width / ``dim``.

    Shapes:
        input ``(N, in_features)`` sorted in phi; output ``(N, dim)``.
    """

    def __init__(
        self,
        in_features: int,
        dim: int = 64,
        layers: int = 4,
        heads: int = 4,
        window: int | None = 256,
        ff_mult: int = 2,
    ):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_features, dim), nn.GELU(), nn.Linear(dim, dim))
        self.layers = nn.ModuleList(
            [EncoderLayer(dim, heads, window, ff_mult) for _ in range(layers)]
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class HitFilter(nn.Module):
    """Per-hit logit that the hit belongs to a target (pT > 1 GeV) particle.

    Args: those of :class:`HitEncoder`.

    Shapes:
        input ``(N, in_features)`` sorted in phi; output ``(N,)`` logits.
    """

    def __init__(
        self,
        in_features: int,
        dim: int = 32,
        layers: int = 4,
        heads: int = 4,
        window: int | None = 128,
        ff_mult: int = 2,
    ):
        super().__init__()
        self.encoder = HitEncoder(in_features, dim, layers, heads, window, ff_mult)
        self.head = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(-1)


class DecoderLayer(nn.Module):
    """Queries attend to themselves and to the hits (masked by the previous layer's
    masks); then the hits attend to the queries (hepattn's bidirectional update)."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 2, bidirectional: bool = True):
        super().__init__()
        self.norm_sa = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.norm_ca = nn.LayerNorm(dim)
        self.norm_ctx = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads)
        self.norm_ff = nn.LayerNorm(dim)
        self.ffn = _ffn(dim, ff_mult)
        self.bidirectional = bidirectional
        if bidirectional:
            self.norm_h = nn.LayerNorm(dim)
            self.norm_hq = nn.LayerNorm(dim)
            self.hit_attn = Attention(dim, heads)
            self.norm_hff = nn.LayerNorm(dim)
            self.hit_ffn = _ffn(dim, ff_mult)

    def forward(
        self, q: torch.Tensor, h: torch.Tensor, attn_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = q + self.self_attn(self.norm_sa(q), self.norm_sa(q))
        q = q + self.cross_attn(self.norm_ca(q), self.norm_ctx(h), attn_mask)
        q = q + self.ffn(self.norm_ff(q))
        if self.bidirectional:
            h = h + self.hit_attn(self.norm_h(h), self.norm_hq(q))
            h = h + self.hit_ffn(self.norm_hff(h))
        return q, h


class MaskFormer(nn.Module):
    """Track queries -> one hit mask and one track logit each.

    Args:
        in_features: hit features.
        dim: model width.
        encoder_layers: windowed encoder layers over the hits.
        decoder_layers: decoder layers (each one also gives auxiliary predictions).
        heads: attention heads.
        queries: track queries, more than the most target tracks of one input.
        window: encoder sliding-window block length (``None``: full attention).
        mask_attention: queries attend only to the hits of their previous-layer mask.
        bidirectional: hits attend to the queries after each decoder layer.
        ff_mult: feed-forward width / ``dim``.

    Shapes:
        input ``(N, in_features)`` sorted in phi; output: a list with one
        ``(track_logits (Q,), mask_logits (Q, N))`` per decoder layer, the last is final.
    """

    def __init__(
        self,
        in_features: int,
        dim: int = 64,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        heads: int = 4,
        queries: int = 320,
        window: int | None = 256,
        mask_attention: bool = True,
        bidirectional: bool = True,
        ff_mult: int = 2,
    ):
        super().__init__()
        self.encoder = HitEncoder(in_features, dim, encoder_layers, heads, window, ff_mult)
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.1)
        self.layers = nn.ModuleList(
            [DecoderLayer(dim, heads, ff_mult, bidirectional) for _ in range(decoder_layers)]
        )
        self.mask_attention = mask_attention
        self.norm_q = nn.LayerNorm(dim)
        self.norm_h = nn.LayerNorm(dim)
        self.class_head = nn.Linear(dim, 1)
        self.mask_q = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.mask_h = nn.Linear(dim, dim)
        self.scale = dim**-0.5

    @property
    def n_queries(self) -> int:
        return int(self.queries.shape[0])

    def predict(self, q: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Track logits ``(Q,)`` and mask logits ``(Q, N)`` of the current queries."""
        qn = self.norm_q(q)
        masks = self.mask_q(qn) @ self.mask_h(self.norm_h(h)).T * self.scale
        return self.class_head(qn).squeeze(-1), masks

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        h = self.encoder(x)
        q = self.queries
        out = []
        for layer in self.layers:
            attn_mask = None
            if self.mask_attention and out:
                # Mask2Former: attend to the hits the previous layer puts in the mask; a
                # query whose mask is empty attends everywhere (else its softmax is NaN).
                keep = out[-1][1].detach() > 0
                keep[~keep.any(dim=1)] = True
                attn_mask = keep[None]
            q, h = layer(q, h, attn_mask)
            out.append(self.predict(q, h))
        return out
