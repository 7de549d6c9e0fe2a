"""TrackFormer in ONNX (``lhcml export onnx trackformer``).

Inputs, for a batch of equal-length candidates (as :func:`lhcml.fitting.evaluate.predict`
feeds them; dynamic axes ``candidates`` and ``hits``): ``hits`` (candidates, hits, F)
float32, ``detector_id`` (candidates, hits) int64, ``global_features`` (candidates, G)
float32. Outputs: ``params`` (candidates, 5, K) in the normalised units of the loss
(:func:`lhcml.fitting.losses.estimate`), ``cand_logit`` (candidates,) and ``hit_logit``
(candidates, hits), the quality heads' logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lhcml.portable.onnx import OnnxModule, OnnxSignature


class _Outputs(nn.Module):
    """TrackFormer with its dict output as a tuple (ONNX outputs are positional)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, hits: Tensor, detector_id: Tensor, global_features: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(hits, detector_id, None, global_features, True)
        return out["params"], out["cand_logit"], out["hit_logit"]


def onnx_signature(model: Any) -> OnnxSignature:
    """The :class:`~lhcml.portable.onnx.OnnxSignature` of a TrackFormer."""
    n_hit = int(model.hit_in.in_features)
    n_global = int(model.global_in[0].in_features)
    n_ids = int(model.detector.num_embeddings)
    sizes = ((8, 12), (200, 9))

    def example(i: int) -> tuple[Tensor, ...]:
        gen = torch.Generator().manual_seed(i)
        b, length = sizes[i]
        return (
            torch.randn(b, length, n_hit, generator=gen),
            torch.randint(0, n_ids, (b, length), generator=gen),
            torch.randn(b, n_global, generator=gen),
        )

    axes = {0: "candidates", 1: "hits"}
    return OnnxSignature(
        _Outputs(model).eval(),
        ("hits", "detector_id", "global_features"),
        ("params", "cand_logit", "hit_logit"),
        {"hits": axes, "detector_id": axes, "global_features": {0: "candidates"}},
        example,
    )


class OnnxTrackFormer(OnnxModule):
    """An exported TrackFormer called as the torch model by
    :func:`lhcml.fitting.evaluate.predict` (equal-length batches: ``mask`` is None)."""

    def __init__(self, model: Any, *, threads: int | None = None) -> None:
        super().__init__(onnx_signature(model).export(), threads=threads)
        #: The calibration of the uncertainties travels with the weights.
        self.sigma_scale = model.sigma_scale.detach().clone()

    def parameters(self) -> Any:
        """One CPU tensor: ``predict`` reads the device from the parameters."""
        return iter([self.sigma_scale])

    def __call__(  # type: ignore[override]
        self,
        hits: Tensor,
        detector_id: Tensor,
        mask: Tensor | None,
        global_features: Tensor,
        quality: bool = True,
    ) -> dict[str, Tensor]:
        if mask is not None:
            raise ValueError("the ONNX TrackFormer takes equal-length batches (mask None)")
        params, cand, hit = super().__call__(hits, detector_id, global_features)
        return {"params": params, "cand_logit": cand, "hit_logit": hit}
