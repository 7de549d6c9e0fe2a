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
outputs of a candidate do not depend on how much padding its batch carries.
Pre-norm encoder layers (``norm_first``), GELU.
"""

from __future__ import annotations

import torch
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
        forward(hits (B, L, F), detector_id (B, L), mask (B, L) bool True = real hit,
        global_features (B, G), quality=True) -> dict with ``params`` (B, P, K) and, with
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
        mask: torch.Tensor,
        global_features: torch.Tensor,
        quality: bool = True,
    ) -> dict[str, torch.Tensor]:
        b = hits.shape[0]
        tokens = self.hit_in(hits) + self.detector(detector_id)
        summary = self.global_in(global_features)[:, None, :]
        x = torch.cat([summary, tokens], dim=1)
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        x = self.encoder(x, src_key_padding_mask=~valid)
        head = x[:, 0]
        params = self.param_head(head).view(b, self.n_params, self.outputs_per_param)
        if not quality:  # fitting only: skip the quality heads
            return {"params": params}
        cand = self.cand_head(head)[:, 0]
        hit_in = torch.cat([x[:, 1:], head[:, None, :].expand(-1, x.shape[1] - 1, -1)], dim=-1)
        hit = self.hit_head(hit_in)[..., 0]
        return {"params": params, "cand_logit": cand, "hit_logit": hit}
