"""Jet taggers: Particle Transformer, Particle Flow Network, substructure BDT.

The networks share one call signature, ``model(x, v, mask) -> logits`` (see
:mod:`lhcml.jets.dataset` for the tensors). The shipped model lives in
:data:`SHIPPED_MODEL_DIR` (weights, config, metrics).
"""

from __future__ import annotations

from pathlib import Path

#: The small trained top-vs-QCD Particle Transformer shipped with the package.
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "part_top_qcd"

__all__ = ["SHIPPED_MODEL_DIR"]
