"""TrackFormer: a transformer encoder over a candidate's hits.

One backbone, three heads:

- **parameters**: from a learned summary token (prepended, fed with the candidate's
  global features), ``K`` numbers per track parameter (mean and log variance, or three
  quantiles; :mod:`lhcml.fitting.losses`), in the normalised units of
  :mod:`lhcml.fitting.dataset`;
- **candidate quality**: one logit per candidate (real vs fake), from the same token;
- **hit quality**: one logit per hit (belongs to the candidate's particle or not).

Hits are embedded by a linear map of their features plus a learned embedding of their
detector layer; padding is excluded from attention with a key-padding mask, so the
outputs of a candidate do not depend on how much padding its batch carries (a batch of
equal-length candidates, as :class:`lhcml.fitting.dataset.Batches` makes in inference,
passes ``mask=None`` and skips the masking). Pre-norm encoder layers (``norm_first``).

**Speed.** The layers' weights are those of ``nn.TransformerEncoderLayer`` (same state
dict), but :func:`encoder_layer` evaluates them itself: PyTorch's fused CPU path spends
most of its time in a softmax over the last dimension, which for sequences of ~15 hits
runs scalar code (~16 ns per element). Here the attention scores are laid out keys-first,
``(keys, batch * heads, queries)``, so the softmax reduces over the outermost dimension
and vectorises over everything else (~20x faster at these sizes); the other operations
are the usual matrix products, layer norms and activations. A fitting-only forward
(``quality=False``, eval mode) evaluates the last layer for the summary token alone
(:func:`summary_layer`): its keys and values need every token, but its query, attention
output and feed-forward only the one token the parameter head reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lhcml.fitting.dataset import N_DETECTOR_IDS


class TrackFormer(nn.Module):
    """Transformer encoder regressing track parameters and scoring candidates and hits.

    Args:
        n_hit_features: features per hit (F).
        n_global_features: features per candidate (G).
        d_model: token width.
        n_heads: attention heads.
        n_layers: encoder layers.
        d_ff: feed-forward width.
        dropout: dropout in the encoder.
        n_params: track parameters (P = 5).
        outputs_per_param: K (2 for ``gnll`` / ``mse``, 3 for ``quantile``).
        n_detector_ids: size of the detector-layer embedding.

    Shapes:
        forward(hits (B, L, F), detector_id (B, L), mask (B, L) bool True = real hit or
        None (no padding), global_features (B, G), quality=True) -> dict with ``params`` (B, P, K) and, with
        ``quality``, ``cand_logit`` (B,) and ``hit_logit`` (B, L) (padding entries are
        meaningless). The uncertainties in
        ``params`` are raw; :func:`lhcml.fitting.evaluate.predict` applies the calibrated
        buffer ``sigma_scale`` (P,).
    """

    def __init__(
        self,
        n_hit_features: int,
        n_global_features: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 3,
        d_ff: int = 128,
        dropout: float = 0.0,
        n_params: int = 5,
        outputs_per_param: int = 2,
        n_detector_ids: int = N_DETECTOR_IDS,
    ) -> None:
        super().__init__()
        self.n_params = n_params
        self.outputs_per_param = outputs_per_param
        self.hit_in = nn.Linear(n_hit_features, d_model)
        self.detector = nn.Embedding(n_detector_ids, d_model)
        self.global_in = nn.Sequential(
            nn.Linear(n_global_features, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=d_ff,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.param_head = nn.Sequential(
            nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, n_params * outputs_per_param)
        )
        self.cand_head = nn.Sequential(
            nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, 1)
        )
        self.hit_head = nn.Sequential(
            nn.Linear(2 * d_model, d_model), nn.GELU(), nn.Linear(d_model, 1)
        )
        #: Per-parameter factor on the predicted uncertainties, calibrated after training
        #: on the validation set (:func:`lhcml.fitting.train.train`); saved with the weights.
        self.register_buffer("sigma_scale", torch.ones(n_params))
        # Small initial outputs: the seed (reference) is the starting prediction.
        nn.init.zeros_(self.param_head[-1].weight)
        nn.init.zeros_(self.param_head[-1].bias)

    def forward(
        self,
        hits: torch.Tensor,
        detector_id: torch.Tensor,
        mask: torch.Tensor | None,
        global_features: torch.Tensor,
        quality: bool = True,
    ) -> dict[str, torch.Tensor]:
        b = hits.shape[0]
        fit_only = not quality and not self.training
        if fit_only:
            # Same sum, one pass fewer: the input bias rides in the gathered layer embedding
            # and the hit features' product is added to it in place.
            table = self.detector.weight + self.hit_in.bias
            tokens = F.embedding(detector_id, table)
            tokens.view(-1, tokens.shape[-1]).addmm_(
                hits.reshape(-1, hits.shape[-1]), self.hit_in.weight.t()
            )
        else:
            tokens = self.hit_in(hits) + self.detector(detector_id)
        summary = self.global_in(global_features)[:, None, :]
        x = torch.cat([summary, tokens], dim=1)
        key_bias = None
        if mask is not None and not bool(mask.all()):
            key_bias = padding_bias(mask, self.encoder.layers[0].self_attn.num_heads)
        layers = self.encoder.layers
        norm = self.encoder.norm
        if fit_only:
            # Fitting only: the parameters read the summary token alone, so the last
            # layer computes only its output (keys and values of all tokens, one query).
            for layer in layers[:-1]:
                x = encoder_layer(layer, x, key_bias)
            head = summary_layer(layers[-1], x, key_bias)
            head = F.layer_norm(head, head.shape[-1:], norm.weight, norm.bias, norm.eps)
            params = self.param_head(head).view(b, self.n_params, self.outputs_per_param)
            return {"params": params}
        for layer in layers:
            x = encoder_layer(layer, x, key_bias)
        x = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
        head = x[:, 0]
        params = self.param_head(head).view(b, self.n_params, self.outputs_per_param)
        if not quality:  # fitting only: skip the quality heads
            return {"params": params}
        cand = self.cand_head(head)[:, 0]
        hit_in = torch.cat([x[:, 1:], head[:, None, :].expand(-1, x.shape[1] - 1, -1)], dim=-1)
        hit = self.hit_head(hit_in)[..., 0]
        return {"params": params, "cand_logit": cand, "hit_logit": hit}


def padding_bias(mask: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Additive attention bias that hides padded keys.

    Args:
        mask: (B, L) bool, True for real hits (the summary token in front is always real).
        n_heads: attention heads.

    Returns:
        (L + 1, B * n_heads, 1) float: 0 for real keys, -inf for padding, in the keys-first
        layout of :func:`encoder_layer`.
    """
    b = mask.shape[0]
    valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
    bias = torch.zeros(valid.shape, dtype=torch.float32, device=mask.device)
    bias = bias.masked_fill(~valid, float("-inf"))
    return bias.t().repeat_interleave(n_heads, dim=1)[:, :, None]


def encoder_layer(
    layer: nn.TransformerEncoderLayer, x: torch.Tensor, key_bias: torch.Tensor | None = None
) -> torch.Tensor:
    """One pre-norm ``nn.TransformerEncoderLayer`` (its weights, its maths), evaluated with
    keys-first attention scores (see the module docstring).

    Args:
        layer: a ``norm_first``, ``batch_first`` layer.
        x: (B, L, D) tokens.
        key_bias: (L, B * heads, 1) from :func:`padding_bias`, or None (no padding).

    Returns:
        (B, L, D).
    """
    b, n, d = x.shape
    attn = layer.self_attn
    h = attn.num_heads
    dh = d // h
    drop = attn.dropout if layer.training else 0.0
    y = F.layer_norm(x, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
    # The 1 / sqrt(dh) of the scores folded into the query projection (a 3D x D matrix).
    scale = torch.ones(3 * d, 1, dtype=x.dtype, device=x.device)
    scale[:d] = dh**-0.5
    qkv = F.linear(y, attn.in_proj_weight * scale, attn.in_proj_bias * scale[:, 0])
    # (3, B * H, L, dh), heads fastest within a candidate.
    qkv = qkv.view(b, n, 3, h, dh).permute(2, 0, 3, 1, 4).reshape(3, b * h, n, dh)
    q, k, v = qkv[0], qkv[1], qkv[2]
    s = torch.bmm(k, q.transpose(1, 2)).transpose(0, 1)  # (keys, B * H, queries)
    s = s + key_bias if key_bias is not None else s.contiguous()
    a = torch.softmax(s, dim=0)
    if drop > 0:
        a = F.dropout(a, drop, training=True)
    # Transposed output (B * H, dh, queries): reads the keys-first weights without a copy.
    o = torch.bmm(v.transpose(1, 2), a.transpose(0, 1))
    o = o.view(b, h, dh, n).permute(0, 3, 1, 2).reshape(b, n, d)
    o = F.linear(o, attn.out_proj.weight, attn.out_proj.bias)
    x = x + layer.dropout1(o)
    y = F.layer_norm(x, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
    y = layer.linear2(layer.dropout(layer.activation(layer.linear1(y))))
    return x + layer.dropout2(y)


def summary_layer(
    layer: nn.TransformerEncoderLayer, x: torch.Tensor, key_bias: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`encoder_layer`'s output for the first (summary) token only.

    The same maths restricted to one query: layer norm and keys / values of every token,
    the query, attention, feed-forward and residuals of token 0 only (a fitting-only
    forward needs nothing else from the last layer). Per head, the scores and the
    attention-weighted values are read off block-diagonal products, so no per-head
    reshaping copies are made.

    Args:
        layer: a ``norm_first``, ``batch_first`` layer (inference: no dropout).
        x: (B, L, D) tokens, the summary token first.
        key_bias: (L, B * heads, 1) from :func:`padding_bias`, or None (no padding).

    Returns:
        (B, D): ``encoder_layer(layer, x, key_bias)[:, 0]``.
    """
    b, n, d = x.shape
    attn = layer.self_attn
    h = attn.num_heads
    dh = d // h
    w, wb = attn.in_proj_weight, attn.in_proj_bias
    y = F.layer_norm(x, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
    q = F.linear(y[:, 0], w[:d], wb[:d]) * dh**-0.5  # (B, D)
    # Keys and values without their biases: the key bias adds the same q . b_k to all
    # scores of the query (cancels in the softmax); the attention weights sum to one, so
    # the value bias is added to the output. (Broadcasting a bias into a (B * L, 2D)
    # product costs more than the product itself at these sizes.)
    kv = F.linear(y, w[d:])  # (B, L, 2D): keys, then values
    # head[j, c] = 1 where feature j belongs to head c.
    head = (torch.arange(d, device=x.device)[:, None] // dh) == torch.arange(h, device=x.device)
    head = head.to(x.dtype)
    s = torch.bmm(kv[..., :d], q[:, :, None] * head)  # (B, L, H): key . query per head
    if key_bias is not None:
        s = s + key_bias.view(n, b, h).transpose(0, 1)
    a = torch.softmax(s, dim=1)
    # (B, H, D) weighted values of every head; keep each head's own block.
    o = (torch.bmm(a.transpose(1, 2), kv[..., d:]) * head.t()).sum(1) + wb[2 * d :]
    o = F.linear(o, attn.out_proj.weight, attn.out_proj.bias)
    x0 = x[:, 0] + o
    y0 = F.layer_norm(x0, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
    return x0 + layer.linear2(layer.activation(layer.linear1(y0)))
