"""The Particle Transformer in ONNX (``lhcml export onnx part``).

Inputs (dynamic axes ``jets`` and ``particles``): ``x`` (jets, particles, C) float32
constituent features, ``v`` (jets, particles, 4) float32 four-momenta (px, py, pz, E),
``mask`` (jets, particles) bool, True for real constituents. Output: ``logits`` (jets,
classes). Under export the model computes its pair features over all particle pairs
(:meth:`lhcml.jets.models.part.PairEmbed._dense`) and does not trim padding columns, so
no shape depends on the data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lhcml.portable.onnx import OnnxModule, OnnxSignature


def onnx_signature(model: Any) -> OnnxSignature:
    """The :class:`~lhcml.portable.onnx.OnnxSignature` of a ParticleTransformer."""
    n_features = next(m.in_features for m in model.embed.modules() if isinstance(m, nn.Linear))
    sizes = ((4, 30), (64, 50))

    def example(i: int) -> tuple[Tensor, ...]:
        gen = torch.Generator().manual_seed(i)
        jets, parts = sizes[i]
        x = torch.randn(jets, parts, n_features, generator=gen)
        p3 = torch.randn(jets, parts, 3, generator=gen) * 10
        v = torch.cat([p3, (p3.norm(dim=-1, keepdim=True) + 0.1)], dim=-1)  # massive
        mask = torch.rand(jets, parts, generator=gen) < 0.7
        mask[:, 0] = True  # every jet has a constituent
        return x, v, mask

    axes = {0: "jets", 1: "particles"}
    return OnnxSignature(
        model.eval(),
        ("x", "v", "mask"),
        ("logits",),
        {"x": axes, "v": axes, "mask": axes},
        example,
    )


class OnnxTagger(OnnxModule):
    """An exported ParT called as the torch tagger (``model(x, v, mask) -> logits``) by
    :func:`lhcml.jets.evaluation.predict`."""

    def __call__(self, x: Tensor, v: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        return super().__call__(x.float(), v.float(), mask.bool())


def onnx_tagger(model: Any, *, threads: int | None = None) -> OnnxTagger:
    """ONNX Runtime inference of a loaded ParticleTransformer (exported in memory)."""
    from lhcml.errors import ConfigError
    from lhcml.jets.models.part import ParticleTransformer

    if not isinstance(model, ParticleTransformer):
        raise ConfigError(f"--backend onnx: covers the ParT, not {type(model).__name__}")
    return OnnxTagger(onnx_signature(model).export(), threads=threads)
