"""Fused CPU inference of the Interaction Network's edge MLPs (numba).

On a mu = 200 module-map graph (~6 x 10^5 edges, 32 channels) the network's time goes to
memory traffic, not arithmetic: every torch operation on the ``(E, H)`` edge states
(gather, add, matmul, LayerNorm, ReLU, residual add, two scatters) reads and writes the
whole ~90 MB array, ~12 passes per iteration. :func:`pair_mlp` runs an edge MLP for one
edge at a time instead (gather of the two node projections, the first layer's edge block,
LayerNorm + ReLU, the hidden layers, optionally the residual update and the sums into the
two end nodes), so each edge row is read and written once per iteration.

The arithmetic is that of :func:`lhcml.gnn.mlp.make_mlp` with ``output_activation=True``
(the Interaction Network's encoders and edge updates); the results agree with the torch
path to float32 rounding (``tests/gnn/test_gnn_layers.py``). Training keeps the torch path
(autograd); this one runs only on CPU float32 tensors without gradient.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor, nn


@numba.njit(cache=True, fastmath=True, nogil=True)
def _gather_add(
    src: np.ndarray, dst: np.ndarray, proj_src: np.ndarray, proj_dst: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    h = out.shape[1]
    for i in range(src.shape[0]):
        s = src[i]
        d = dst[i]
        for j in range(h):
            out[i, j] = proj_src[s, j] + proj_dst[d, j]


@numba.njit(cache=True, fastmath=True, nogil=True)
def _norm_relu(
    v: np.ndarray, gamma: np.ndarray, beta: np.ndarray, layer_norm: bool, eps: float
) -> None:  # pragma: no cover - compiled
    # LayerNorm (biased variance, as torch) and ReLU of each row, in place.
    n, h = v.shape
    inv_h = np.float32(1.0 / h)
    eps32 = np.float32(eps)
    for i in range(n):
        if layer_norm:
            mean = np.float32(0.0)
            for j in range(h):
                mean += v[i, j]
            mean *= inv_h
            var = np.float32(0.0)
            for j in range(h):
                c = v[i, j] - mean
                var += c * c
            inv = np.float32(1.0) / np.sqrt(var * inv_h + eps32)
            for j in range(h):
                v[i, j] = max((v[i, j] - mean) * inv * gamma[j] + beta[j], np.float32(0.0))
        else:
            for j in range(h):
                v[i, j] = max(v[i, j], np.float32(0.0))


@numba.njit(cache=True, fastmath=True, nogil=True)
def _add_scatter(
    v: np.ndarray,
    e: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    scatter: bool,
    incoming: np.ndarray,
    outgoing: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # Residual update e += v, then the updated rows summed into both end nodes.
    n, h = v.shape
    for i in range(n):
        for j in range(h):
            e[i, j] += v[i, j]
        if scatter:
            s = src[i]
            d = dst[i]
            for j in range(h):
                incoming[d, j] += e[i, j]
                outgoing[s, j] += e[i, j]


#: Edges per block: the block's temporaries (a few 2 MB arrays at H = 32) stay in cache.
CHUNK = 16384


def mlp_parts(mlp: nn.Sequential) -> tuple[list[nn.Linear], list[nn.LayerNorm]]:
    """Linear and LayerNorm layers of a :func:`~lhcml.gnn.mlp.make_mlp` MLP whose every
    layer (the output one too) is activated; raises ValueError for other layouts."""
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    norms = [m for m in mlp if isinstance(m, nn.LayerNorm)]
    relus = [m for m in mlp if isinstance(m, nn.ReLU)]
    if len(relus) != len(linears) or (norms and len(norms) != len(linears)):
        raise ValueError("fused inference needs an MLP with an activation after every layer")
    h = linears[0].out_features
    if any(lin.in_features != h or lin.out_features != h for lin in linears[1:]):
        raise ValueError("fused inference needs hidden layers of one width")
    return linears, norms


def _layer_weights(
    linears: list[nn.Linear], norms: list[nn.LayerNorm]
) -> tuple[list[tuple[Tensor, Tensor]], list[np.ndarray], list[np.ndarray], float]:
    """The hidden layers' (W^T, b) and the LayerNorms' gamma, beta, eps of an MLP
    (unused placeholders where it has no LayerNorm: the kernels then skip the norm)."""
    hidden = [(lin.weight.detach().T, lin.bias.detach()) for lin in linears[1:]]
    if norms:
        gamma = [m.weight.detach().numpy() for m in norms]
        beta = [m.bias.detach().numpy() for m in norms]
        return hidden, gamma, beta, float(norms[0].eps)
    zeros = [np.zeros(linears[0].out_features, np.float32)] * len(linears)
    return hidden, zeros, zeros, 0.0


def supported(*tensors: Tensor) -> bool:
    """Whether the fused path applies: CPU float32 tensors, no gradient needed."""
    return not torch.is_grad_enabled() and all(
        t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors
    )


def pair_mlp(
    mlp: nn.Sequential,
    x: Tensor,
    edge_index: Tensor,
    e: Tensor,
    *,
    residual: bool = False,
    scatter: bool = False,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``mlp(cat([x[src], x[dst], e]))`` for every edge, fused (CPU, float32, no grad).

    Args:
        mlp: a :func:`~lhcml.gnn.mlp.make_mlp` MLP on ``2 H + F`` inputs, every layer
            activated (``output_activation=True``).
        x: node states; edge_index: ``(2, E)`` source and target rows.
        e: edge inputs.
        residual: add the result to ``e`` in place (``e`` must be ``(E, H)``) and return
            ``e``; otherwise return a new tensor.
        scatter: also return the sums of the (updated) edge rows over incoming and
            outgoing edges of every node.

    Returns:
        ``(edge rows, incoming sums or None, outgoing sums or None)``.

    Shapes:
        - x: ``(N, H)``, edge_index: ``(2, E)``, e: ``(E, F)`` -> ``(E, H)``, ``(N, H)``
    """
    linears, norms = mlp_parts(mlp)
    first = linears[0]
    h = first.out_features
    n = x.shape[1]
    w = first.weight.detach()
    proj_src = torch.addmm(first.bias.detach(), x, w[:, :n].T).numpy()
    proj_dst = (x @ w[:, n : 2 * n].T).numpy()
    w_edge_t = w[:, 2 * n :].T
    hidden, gamma, beta, eps = _layer_weights(linears, norms)
    e = e.contiguous()
    if residual:
        if e.shape[1] != h:
            raise ValueError("residual update needs (E, H) edge states")
        out = e
    else:
        out = torch.zeros((e.shape[0], h), dtype=torch.float32)
    n_nodes = x.shape[0] if scatter else 0
    incoming = torch.zeros((n_nodes, h), dtype=torch.float32)
    outgoing = torch.zeros((n_nodes, h), dtype=torch.float32)
    inc_np, out_nodes_np = incoming.numpy(), outgoing.numpy()
    src_all, dst_all = edge_index[0].contiguous().numpy(), edge_index[1].contiguous().numpy()
    buffers = [torch.empty((min(CHUNK, e.shape[0]), h), dtype=torch.float32) for _ in range(2)]
    for a in range(0, e.shape[0], CHUNK):
        b = min(a + CHUNK, e.shape[0])
        src, dst = src_all[a:b], dst_all[a:b]
        v, spare = buffers[0][: b - a], buffers[1][: b - a]
        _gather_add(src, dst, proj_src, proj_dst, v.numpy())
        v.addmm_(e[a:b], w_edge_t)  # the first layer's edge block (BLAS)
        for layer, (w_t, bias) in enumerate(hidden):
            _norm_relu(v.numpy(), gamma[layer], beta[layer], bool(norms), eps)
            torch.addmm(bias, v, w_t, out=spare)
            v, spare = spare, v
        _norm_relu(v.numpy(), gamma[-1], beta[-1], bool(norms), eps)
        # Without residual, out is zero: the "update" writes the rows.
        _add_scatter(v.numpy(), out[a:b].numpy(), src, dst, scatter, inc_np, out_nodes_np)
    return out, (incoming if scatter else None), (outgoing if scatter else None)


def node_update(mlp: nn.Sequential, h: Tensor, incoming: Tensor, outgoing: Tensor) -> Tensor:
    """``h + mlp(cat([h, incoming, outgoing]))`` in blocks of nodes (CPU, float32, no grad).

    Args:
        mlp: a :func:`~lhcml.gnn.mlp.make_mlp` MLP on ``3 H`` inputs, every layer activated.
        h: node states; incoming, outgoing: summed edge states (:func:`pair_mlp`).

    Shapes:
        - h, incoming, outgoing: ``(N, H)`` -> ``(N, H)``
    """
    linears, norms = mlp_parts(mlp)
    first = linears[0]
    n = h.shape[1]
    w = first.weight.detach()
    blocks = (w[:, :n].T, w[:, n : 2 * n].T, w[:, 2 * n :].T)
    hidden, gamma, beta, eps = _layer_weights(linears, norms)
    width = first.out_features
    out = torch.empty_like(h)
    size = min(CHUNK, h.shape[0])
    buffers = [torch.empty((size, width), dtype=torch.float32) for _ in range(2)]
    for a in range(0, h.shape[0], CHUNK):
        b = min(a + CHUNK, h.shape[0])
        v, spare = buffers[0][: b - a], buffers[1][: b - a]
        torch.addmm(first.bias.detach(), h[a:b], blocks[0], out=v)
        v.addmm_(incoming[a:b], blocks[1])
        v.addmm_(outgoing[a:b], blocks[2])
        for layer, (w_t, bias) in enumerate(hidden):
            _norm_relu(v.numpy(), gamma[layer], beta[layer], bool(norms), eps)
            torch.addmm(bias, v, w_t, out=spare)
            v, spare = spare, v
        _norm_relu(v.numpy(), gamma[-1], beta[-1], bool(norms), eps)
        torch.add(h[a:b], v, out=out[a:b])
    return out
