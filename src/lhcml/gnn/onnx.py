"""The GNN chain's models in ONNX: export (:func:`to_onnx`) and ONNX Runtime inference
(:func:`onnx_model`, used by ``GNNChain(backend="onnx")`` / ``lhcml reconstruct --backend
onnx``).

Inputs and outputs, with dynamic axes ``hits`` and ``edges``:

======================  ============================================  ===================
model                   inputs                                        output
======================  ============================================  ===================
``InteractionNetwork``  ``x`` (hits, F) float32, ``edge_index``        ``logits`` (edges,)
                        (2, edges) int64
``EdgeFilter``          the same                                      ``logits`` (edges,)
``MetricLearning``      ``x`` (hits, F) float32                        ``embedding``
                                                                      (hits, D)
======================  ============================================  ===================

Edge features are computed inside the graph from ``x`` and ``edge_index``, as in the
torch models, so a C++ caller passes only the hits' features and the edges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lhcml.errors import ConfigError
from lhcml.gnn.edge_filter import batched_scores
from lhcml.portable.onnx import OnnxModule, OnnxSignature

#: Model class -> (input names, output name, dynamic axes).
SIGNATURES: dict[str, tuple[tuple[str, ...], str, dict[str, dict[int, str]]]] = {
    "InteractionNetwork": (
        ("x", "edge_index"),
        "logits",
        {"x": {0: "hits"}, "edge_index": {1: "edges"}},
    ),
    "EdgeFilter": (("x", "edge_index"), "logits", {"x": {0: "hits"}, "edge_index": {1: "edges"}}),
    "MetricLearning": (("x",), "embedding", {"x": {0: "hits"}}),
}


def example_inputs(model: Any, n_hits: int = 64, n_edges: int = 256) -> tuple[Tensor, ...]:
    """Random inputs of the right widths for tracing ``model`` (any sizes work after)."""
    name = type(model).__name__
    if name not in SIGNATURES:
        raise ConfigError(f"no ONNX signature for {name}; known: {sorted(SIGNATURES)}")
    gen = torch.Generator().manual_seed(0)
    n_features = int(model.node_norm.centre.numel())
    x = torch.randn(n_hits, n_features, generator=gen)
    if SIGNATURES[name][0] == ("x",):
        return (x,)
    return x, torch.randint(0, n_hits, (2, n_edges), generator=gen)


def onnx_signature(model: Any) -> OnnxSignature:
    """The :class:`~lhcml.portable.onnx.OnnxSignature` of a GNN-chain model; it traces the
    torch path (``fused`` off: the numba kernels cannot be traced; same numbers)."""
    inputs, output, dynamic = SIGNATURES[type(model).__name__]
    if hasattr(model, "fused"):
        model.fused = False
    sizes = ((64, 256), (3000, 20000))  # the larger: ~7 edges into each node
    return OnnxSignature(
        model.eval(), inputs, (output,), dynamic, lambda i: example_inputs(model, *sizes[i])
    )


def to_onnx(model: Any) -> bytes:
    """The serialised ONNX model of a GNN-chain model (``model.fused`` is kept)."""
    fused = getattr(model, "fused", None)
    try:
        return onnx_signature(model).export()
    finally:
        if fused is not None:
            model.fused = fused


class OnnxEdgeModel(OnnxModule):
    """An exported edge classifier / filter / embedding; ``scores`` as ``EdgeFilter``'s."""

    def scores(self, x: Tensor, edge_index: Tensor, batch_size: int = 1_000_000) -> Tensor:
        """Sigmoid scores in batches of edges (bounded memory)."""
        return batched_scores(self, x, edge_index, batch_size)


def onnx_model(model: Any, model_file: Path, *, threads: int | None = None) -> OnnxEdgeModel:
    """ONNX Runtime inference of ``model`` (loaded from ``model_file``): the ``.onnx`` file
    beside it when there is one not older than it (``lhcml export onnx``), else an export
    made now, in memory (a few seconds).
    """
    onnx_file = model_file.with_suffix(".onnx")
    # A file older than the weights is stale (the weights were retrained since).
    if onnx_file.is_file() and onnx_file.stat().st_mtime >= model_file.stat().st_mtime:
        return OnnxEdgeModel(onnx_file, threads=threads)
    return OnnxEdgeModel(to_onnx(model), threads=threads)
