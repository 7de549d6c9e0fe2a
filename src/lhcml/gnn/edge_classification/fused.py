"""Fused CPU inference of the Interaction Network's edge and node MLPs (numba).

On a mu = 200 module-map graph (~7 x 10^5 edges, 64 channels) the torch path's time goes
to memory traffic: every operation on the ``(E, H)`` edge states (gather, add, matmul,
LayerNorm, ReLU, residual add, two scatters) reads and writes the whole ~190 MB array.
:func:`pair_mlp` runs an edge MLP on cache-sized blocks of edges instead (gather of the
two node projections, the first layer's edge block, LayerNorm + ReLU, the hidden layers,
the residual update and the sums into the two end nodes), so each edge row is read and
written once per iteration; the matrix products stay BLAS (oneDNN / MKL) calls.

Two precisions of the matrix products (:data:`PRECISIONS`):

- ``float32``: the torch path's arithmetic (:func:`lhcml.gnn.mlp.make_mlp` with
  ``output_activation=True``), equal to float32 rounding (``tests/gnn/test_gnn_fused.py``).
- ``bfloat16``: the products' inputs and outputs rounded to bfloat16 (8-bit mantissa),
  accumulated in float32; LayerNorm, the residual sums and the node sums are float32, the
  edge states are stored as bfloat16 (half the memory traffic of the largest array). On
  CPUs with Intel AMX tiles oneDNN multiplies bfloat16 ~3x faster than float32 (64-wide
  layers, one core: 0.3 vs 1.0 ms per 16k rows). :func:`auto_precision` picks it only there.

Training keeps the torch path (autograd); this one runs only on CPU float32 tensors
without gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import torch
from torch import Tensor, nn

#: Precisions of the fused path's matrix products.
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")

#: Edges (or nodes) per block: the block's temporaries (a few 4 MB arrays at H = 64) stay
#: in the core's L2 cache.
CHUNK = 32768


def auto_precision() -> str:
    """``bfloat16`` where the CPU has AMX tiles (hardware bfloat16 products), else
    ``float32`` (elsewhere bfloat16 products are no faster)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return "bfloat16" if probe is not None and bool(probe()) else "float32"


def check_precision(precision: str) -> str:
    """``precision`` itself, or :func:`auto_precision` for ``auto``; ValueError otherwise."""
    if precision == "auto":
        return auto_precision()
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' unknown; choose auto or one of {PRECISIONS}")
    return precision


# --- bfloat16 bits (round to nearest even, as torch's float -> bfloat16) -------------------


@numba.njit(cache=True, inline="always")
def _to_bits(v: np.float32) -> np.uint16:  # pragma: no cover - compiled
    b = np.float32(v).view(np.uint32)
    return np.uint16((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> 16)


@numba.njit(cache=True, inline="always")
def _from_bits(b: np.uint16) -> np.float32:  # pragma: no cover - compiled
    return np.uint32(np.uint32(b) << np.uint32(16)).view(np.float32)


# --- kernels --------------------------------------------------------------------------------


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
def _gather_add_bits(
    src: np.ndarray,
    dst: np.ndarray,
    proj_src: np.ndarray,
    proj_dst: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # _gather_add of bfloat16 node projections (half the bytes of the random row reads).
    h = out.shape[1]
    for i in range(src.shape[0]):
        s = src[i]
        d = dst[i]
        for j in range(h):
            out[i, j] = (_from_bits(proj_src[s, j]) + _from_bits(proj_dst[d, j])) + bias[j]


@numba.njit(cache=True, fastmath=True, nogil=True)
def _residual_rows(
    h: np.ndarray, v: np.ndarray, a: int, out: np.ndarray, bits: np.ndarray, to_bits: bool
) -> None:  # pragma: no cover - compiled
    # out[a + i] = h[a + i] + v[i], and with to_bits its bfloat16 copy. The flag is tested
    # per row, not per element, so that the inner loops vectorise (here and below).
    n, w = v.shape
    for i in range(n):
        r = a + i
        for j in range(w):
            out[r, j] = h[r, j] + v[i, j]
        if to_bits:
            for j in range(w):
                bits[r, j] = _to_bits(out[r, j])


@numba.njit(cache=True, fastmath=True, nogil=True)
def _norm_relu(
    v: np.ndarray,
    acc: np.ndarray,
    bias: np.ndarray,
    from_acc: int,
    gamma: np.ndarray,
    beta: np.ndarray,
    layer_norm: bool,
    eps: float,
    bits: np.ndarray,
    to_bits: bool,
) -> None:  # pragma: no cover - compiled
    # Each row's pre-activation is v (from_acc 0), acc + bias (1) or v + acc + bias (2),
    # acc a bfloat16 product (bits); then LayerNorm (biased variance, as torch) and ReLU,
    # written to v, or with to_bits as bfloat16 bits only (the next product's input).
    n, h = v.shape
    inv_h = np.float32(1.0 / h)
    eps32 = np.float32(eps)
    zero = np.float32(0.0)
    for i in range(n):
        # With a pending bfloat16 product, the statistics come in the pass that adds it
        # (sum and sum of squares: one read of the row less, 17 % faster; that product
        # is only good to 3 digits anyway). Float32 rows (from_acc 0) keep torch's
        # two-pass variance.
        mean = zero
        sq = zero
        if from_acc == 1:
            for j in range(h):
                y = _from_bits(acc[i, j]) + bias[j]
                v[i, j] = y
                mean += y
                sq += y * y
        elif from_acc == 2:
            for j in range(h):
                y = v[i, j] + (_from_bits(acc[i, j]) + bias[j])
                v[i, j] = y
                mean += y
                sq += y * y
        else:
            for j in range(h):
                mean += v[i, j]
        if layer_norm:
            mean *= inv_h
            if from_acc == 0:
                var = zero
                for j in range(h):
                    c = v[i, j] - mean
                    var += c * c
                var *= inv_h
            else:
                var = max(sq * inv_h - mean * mean, zero)
            inv = np.float32(1.0) / np.sqrt(var + eps32)
        else:
            mean = zero
            inv = np.float32(1.0)
        # Branch-free inner loops (the flags are tested per row): they vectorise.
        if to_bits and layer_norm:
            for j in range(h):
                bits[i, j] = _to_bits(max((v[i, j] - mean) * inv * gamma[j] + beta[j], zero))
        elif to_bits:
            for j in range(h):
                bits[i, j] = _to_bits(max(v[i, j], zero))
        elif layer_norm:
            for j in range(h):
                v[i, j] = max((v[i, j] - mean) * inv * gamma[j] + beta[j], zero)
        else:
            for j in range(h):
                v[i, j] = max(v[i, j], zero)


@numba.njit(cache=True, fastmath=True, nogil=True)
def _add_scatter_bits(
    v: np.ndarray,
    e_bits: np.ndarray,
    residual: bool,
    src: np.ndarray,
    dst: np.ndarray,
    scatter: bool,
    incoming: np.ndarray,
    outgoing: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # _add_scatter for edge states kept as bfloat16 (half the memory traffic): e = v or
    # e + v summed in float32 and rounded once; the rounded rows go to the node sums.
    # (Fusing the last LayerNorm in here measured slower: 1.89 against 1.74 s.)
    n, h = v.shape
    for i in range(n):
        s = src[i]
        d = dst[i]
        for j in range(h):
            y = _from_bits(e_bits[i, j]) + v[i, j] if residual else v[i, j]
            b = _to_bits(y)
            e_bits[i, j] = b
            if scatter:
                y = _from_bits(b)
                incoming[d, j] += y
                outgoing[s, j] += y


@numba.njit(cache=True, fastmath=True, nogil=True)
def _pack_bits(
    p0: np.ndarray,
    p0_bits: np.ndarray,
    have_bits: bool,
    p1: np.ndarray,
    p2: np.ndarray,
    a: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # Rows a.. of three (N, H) arrays side by side as bfloat16 bits (C, 3 H); the first
    # copied from its bits where given. p1 and p2 (the node sums) are zeroed once read,
    # while in cache: the next iteration's pair_mlp sums into them. One loop per part
    # (2.5x faster than one loop writing all three: 7 against 18 ms per mu = 200 pass).
    n = out.shape[0]
    h = p0.shape[1]
    zero = np.float32(0.0)
    for i in range(n):
        r = a + i
        if have_bits:
            for j in range(h):
                out[i, j] = p0_bits[r, j]
        else:
            for j in range(h):
                out[i, j] = _to_bits(p0[r, j])
        for j in range(h):
            out[i, h + j] = _to_bits(p1[r, j])
        for j in range(h):
            out[i, 2 * h + j] = _to_bits(p2[r, j])
        for j in range(h):
            p1[r, j] = zero
        for j in range(h):
            p2[r, j] = zero


@numba.njit(cache=True, fastmath=True, nogil=True)
def _add_scatter(
    v: np.ndarray,
    e: np.ndarray,
    residual: bool,
    src: np.ndarray,
    dst: np.ndarray,
    scatter: bool,
    incoming: np.ndarray,
    outgoing: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # e = v or the residual update e += v; then the rows summed into both end nodes.
    n, h = v.shape
    for i in range(n):
        for j in range(h):
            e[i, j] = e[i, j] + v[i, j] if residual else v[i, j]
        if scatter:
            s = src[i]
            d = dst[i]
            for j in range(h):
                incoming[d, j] += e[i, j]
                outgoing[s, j] += e[i, j]


@dataclass
class Workspace:
    """Scratch tensors kept between calls. Large allocations come straight from ``mmap``,
    so a fresh one page-faults on first touch (a mu = 200 float32 forward pass took 3.22 s
    with fresh buffers, 2.77 s with a reused workspace); a network reuses its workspace
    from event to event."""

    store: dict[str, Tensor] = field(default_factory=dict)

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
        """An uninitialised ``shape`` tensor under ``name`` (grown when too small)."""
        n = math.prod(shape)
        t = self.store.get(name)
        if t is None or t.dtype != dtype or t.numel() < n:
            t = torch.empty(max(n, 1), dtype=dtype)
            self.store[name] = t
        return t[:n].view(shape)


def _bits(t: Tensor) -> np.ndarray:
    """A bfloat16 tensor's storage as uint16 numpy (no copy)."""
    return t.view(torch.int16).numpy().view(np.uint16)


_NO_BITS = np.zeros((0, 0), np.uint16)


# --- MLP layouts ----------------------------------------------------------------------------


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


@dataclass
class _Layers:
    """An MLP's weights as the kernels take them: the hidden layers' ``(W^T, b)`` (in the
    products' dtype; float32 biases), the LayerNorms' gamma / beta / eps (placeholders
    where it has none: the kernels then skip the norm)."""

    hidden: list[tuple[Tensor, Tensor]]
    gamma: list[np.ndarray]
    beta: list[np.ndarray]
    eps: float
    layer_norm: bool
    width: int
    dtype: torch.dtype

    @classmethod
    def of(cls, linears: list[nn.Linear], norms: list[nn.LayerNorm], dtype: torch.dtype) -> _Layers:
        hidden = [
            (lin.weight.detach().T.contiguous().to(dtype), lin.bias.detach()) for lin in linears[1:]
        ]
        width = linears[0].out_features
        if norms:
            gamma = [m.weight.detach().numpy() for m in norms]
            beta = [m.bias.detach().numpy() for m in norms]
            return cls(hidden, gamma, beta, float(norms[0].eps), True, width, dtype)
        zeros = [np.zeros(width, np.float32)] * len(linears)
        return cls(hidden, zeros, zeros, 0.0, False, width, dtype)

    def buffers(self, ws: Workspace, rows: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-block scratch: two float32 blocks, a product-input and a product-output
        block in the products' dtype."""
        shape = (rows, self.width)
        return (
            ws.get("block_v", shape),
            ws.get("block_spare", shape),
            ws.get("block_in", shape, self.dtype),
            ws.get("block_out", shape, self.dtype),
        )

    def run(
        self,
        v: Tensor,
        spare: Tensor,
        lin: Tensor,
        lout: Tensor,
        pending: int = 0,
        bias0: np.ndarray | None = None,
    ) -> Tensor:
        """LayerNorm + ReLU of the first layer's pre-activation, then the hidden layers;
        returns the block holding the activated output (``v`` or ``spare``).

        The pre-activation is ``v`` (``pending`` 0), the bfloat16 product waiting in
        ``lout`` plus ``bias0`` (1), or ``v`` plus that product (2; the bias is in ``v``).
        """
        bf16 = self.dtype == torch.bfloat16
        n = v.shape[0]
        acc = _bits(lout[:n]) if bf16 else _NO_BITS
        bias_np = bias0 if bias0 is not None else np.zeros(self.width, np.float32)
        for layer, (w_t, bias) in enumerate(self.hidden):
            _norm_relu(
                v.numpy(),
                acc,
                bias_np,
                pending,
                self.gamma[layer],
                self.beta[layer],
                self.layer_norm,
                self.eps,
                _bits(lin[:n]) if bf16 else _NO_BITS,
                bf16,
            )
            if bf16:
                torch.mm(lin[:n], w_t, out=lout[:n])
                pending, bias_np = 1, bias.numpy()
            else:
                torch.addmm(bias, v, w_t, out=spare)
                v, spare = spare, v
        _norm_relu(
            v.numpy(),
            acc,
            bias_np,
            pending,
            self.gamma[-1],
            self.beta[-1],
            self.layer_norm,
            self.eps,
            _NO_BITS,
            False,
        )
        return v


def supported(*tensors: Tensor) -> bool:
    """Whether the fused path applies: CPU float32 tensors, no gradient needed."""
    return not torch.is_grad_enabled() and all(
        t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors
    )


def _dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if check_precision(precision) == "bfloat16" else torch.float32


@dataclass
class EdgeRows:
    """What :func:`pair_mlp` returns: the edge rows (float32, or bfloat16 at precision
    ``bfloat16``; or the head logits) and the sums of the rows over each node's incoming
    and outgoing edges (with ``scatter``)."""

    rows: Tensor
    incoming: Tensor | None = None
    outgoing: Tensor | None = None


def pair_mlp(
    mlp: nn.Sequential,
    x: Tensor,
    edge_index: Tensor,
    e: Tensor,
    *,
    residual: bool = False,
    scatter: bool = False,
    head: nn.Linear | None = None,
    precision: str = "float32",
    x_bits: Tensor | None = None,
    ws: Workspace | None = None,
    sums_zeroed: bool = False,
) -> EdgeRows:
    """``mlp(cat([x[src], x[dst], e]))`` for every edge, fused (CPU, float32, no grad).

    Args:
        mlp: a :func:`~lhcml.gnn.mlp.make_mlp` MLP on ``2 H + F`` inputs, every layer
            activated (``output_activation=True``).
        x: node states; edge_index: ``(2, E)`` source and target rows.
        e: edge inputs (float32), or with precision ``bfloat16`` the edge states as
            bfloat16 (what that precision returns: its states are kept in bfloat16, the
            updates summed in float32 and rounded once).
        residual: add the result to ``e`` in place (``e`` must be ``(E, H)``) and return
            ``e``; otherwise return a new tensor.
        scatter: also return the sums of the (updated) edge rows over incoming and
            outgoing edges of every node.
        head: a last linear layer ``H -> 1`` applied to each row: the rows are then the
            ``(E,)`` logits (the ``(E, H)`` rows are never stored).
        precision: the products' precision (:data:`PRECISIONS`, or ``auto``).
        x_bits: ``x`` as bfloat16 (precision ``bfloat16``; computed here if not given).
        ws: scratch kept between calls (the returned rows, node sums and bits live in it
            until the next call with the same workspace). Default: a new one.
        sums_zeroed: the workspace's node sums are already zero (a bfloat16
            :func:`node_update` zeroes them once read).

    Returns:
        :class:`EdgeRows`.

    Shapes:
        - x: ``(N, H)``, edge_index: ``(2, E)``, e: ``(E, F)`` -> ``(E, H)`` (or ``(E,)``
          with ``head``), ``(N, H)``
    """
    linears, norms = mlp_parts(mlp)
    ws = ws if ws is not None else Workspace()
    dtype = _dtype(precision)
    bf16 = dtype == torch.bfloat16
    layers = _Layers.of(linears, norms, dtype)
    first = linears[0]
    h = first.out_features
    n = x.shape[1]
    w = first.weight.detach()
    proj_src = ws.get("proj_src", (x.shape[0], h), dtype)
    proj_dst = ws.get("proj_dst", (x.shape[0], h), dtype)
    if bf16:
        if x_bits is None:
            x_bits = ws.get("x_bits", tuple(x.shape), dtype)
            x_bits.copy_(x)
        # Node projections in bfloat16; the bias joins in the gather (float32).
        torch.mm(x_bits, w[:, :n].T.to(dtype), out=proj_src)
        torch.mm(x_bits, w[:, n : 2 * n].T.to(dtype), out=proj_dst)
        proj_src_np, proj_dst_np = _bits(proj_src), _bits(proj_dst)
        bias_np = first.bias.detach().numpy()
    else:
        torch.addmm(first.bias.detach(), x, w[:, :n].T, out=proj_src)
        torch.mm(x, w[:, n : 2 * n].T, out=proj_dst)
        proj_src_np, proj_dst_np = proj_src.numpy(), proj_dst.numpy()
    w_edge_t = w[:, 2 * n :].T.contiguous()
    # A narrow edge block (the encoder's few doublet features) stays float32.
    edge_low = bf16 and w_edge_t.shape[0] >= 16
    e = e.contiguous()
    n_edges = e.shape[0]
    # The edge states as the product's input: e itself when kept in bfloat16.
    e_bits = e if e.dtype == torch.bfloat16 else None
    if edge_low:
        w_edge_t = w_edge_t.to(dtype)
        if e_bits is None:
            e_bits = ws.get("e_bits", tuple(e.shape), dtype)
            e_bits.copy_(e)
    if residual and e.shape[1] != h:
        raise ValueError("residual update needs (E, H) edge states")
    if bf16 or head is not None:
        out = torch.empty((0, h), dtype=torch.float32)
    else:
        out = e if residual else ws.get("e", (n_edges, h))
    logits = torch.empty(n_edges if head is not None else 0, dtype=torch.float32)
    keep_bits = bf16 and head is None
    if not keep_bits:
        new_bits = torch.empty((0, 0), dtype=dtype)
    elif e_bits is not None and residual and edge_low:
        new_bits = e_bits  # each block reads its rows' old bits before writing the new
    else:
        new_bits = ws.get("e_bits", (n_edges, h), dtype)
    n_nodes = x.shape[0] if scatter else 0
    incoming = ws.get("incoming", (n_nodes, h))
    outgoing = ws.get("outgoing", (n_nodes, h))
    if not sums_zeroed:
        incoming.zero_()
        outgoing.zero_()
    inc_np, out_nodes_np = incoming.numpy(), outgoing.numpy()
    src_all, dst_all = edge_index[0].contiguous().numpy(), edge_index[1].contiguous().numpy()
    v_buf, spare_buf, lin_buf, lout_buf = layers.buffers(ws, min(CHUNK, n_edges))
    for a in range(0, n_edges, CHUNK):
        b = min(a + CHUNK, n_edges)
        src, dst = src_all[a:b], dst_all[a:b]
        v = v_buf[: b - a]
        if bf16:
            _gather_add_bits(src, dst, proj_src_np, proj_dst_np, bias_np, v.numpy())
        else:
            _gather_add(src, dst, proj_src_np, proj_dst_np, v.numpy())
        if edge_low:
            assert e_bits is not None
            torch.mm(e_bits[a:b], w_edge_t, out=lout_buf[: b - a])
        else:
            v.addmm_(e[a:b], w_edge_t)  # the first layer's edge block (BLAS)
        v = layers.run(v, spare_buf[: b - a], lin_buf, lout_buf, 2 if edge_low else 0)
        if head is not None:
            torch.addmv(head.bias.detach(), v, head.weight.detach()[0], out=logits[a:b])
            continue
        if bf16:
            _add_scatter_bits(
                v.numpy(), _bits(new_bits[a:b]), residual, src, dst, scatter, inc_np, out_nodes_np
            )
            continue
        _add_scatter(
            v.numpy(),
            out[a:b].numpy(),
            residual,
            src,
            dst,
            scatter,
            inc_np,
            out_nodes_np,
        )
    rows = new_bits if keep_bits else out
    return EdgeRows(
        logits if head is not None else rows,
        incoming if scatter else None,
        outgoing if scatter else None,
    )


def node_mlp(
    mlp: nn.Sequential,
    x: Tensor,
    *,
    precision: str = "float32",
    ws: Workspace | None = None,
    out_name: str = "h_encoded",
) -> Tensor:
    """``mlp(x)`` in blocks of rows (CPU, float32, no grad): the node encoder.

    Its first layer is a float32 product (a few input features); LayerNorm, ReLU and the
    hidden layers run as in :func:`pair_mlp` (on 135k mu = 200 nodes, one thread: 28 ms
    against 122 ms for the torch modules).

    Args:
        mlp: a :func:`~lhcml.gnn.mlp.make_mlp` MLP, every layer activated.
        x: ``(N, F)`` inputs.
        precision: the hidden products' precision (:data:`PRECISIONS`, or ``auto``).
        ws, out_name: scratch kept between calls; the result is its ``out_name`` tensor.

    Shapes:
        - x: ``(N, F)`` -> ``(N, H)``
    """
    linears, norms = mlp_parts(mlp)
    layers = _Layers.of(linears, norms, _dtype(precision))
    first = linears[0]
    w_t, bias = first.weight.detach().T, first.bias.detach()
    ws = ws if ws is not None else Workspace()
    out = ws.get(out_name, (x.shape[0], first.out_features))
    _, spare_buf, lin_buf, lout_buf = layers.buffers(ws, min(CHUNK, max(x.shape[0], 1)))
    for a in range(0, x.shape[0], CHUNK):
        b = min(a + CHUNK, x.shape[0])
        v = out[a:b]  # the block is computed in place in the output
        torch.addmm(bias, x[a:b], w_t, out=v)
        r = layers.run(v, spare_buf[: b - a], lin_buf, lout_buf)
        if r.data_ptr() != v.data_ptr():
            v.copy_(r)
    return out


def node_update(
    mlp: nn.Sequential,
    h: Tensor,
    incoming: Tensor,
    outgoing: Tensor,
    *,
    precision: str = "float32",
    ws: Workspace | None = None,
    out_name: str = "h",
    h_bits: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``h + mlp(cat([h, incoming, outgoing]))`` in blocks of nodes (CPU, float32, no grad).

    Args:
        mlp: a :func:`~lhcml.gnn.mlp.make_mlp` MLP on ``3 H`` inputs, every layer activated.
        h: node states; incoming, outgoing: summed edge states (:func:`pair_mlp`).
        precision: the products' precision (:data:`PRECISIONS`, or ``auto``).
        ws, out_name: scratch kept between calls; the result is its ``out_name`` tensor
            (so ``h`` must not be).
        h_bits: ``h`` as bfloat16, if at hand (precision ``bfloat16``). With that
            precision ``incoming`` and ``outgoing`` are zero on return (read once, then
            cleared for the next sums).

    Returns:
        The new node states, and (precision ``bfloat16``) their bfloat16 copy, the next
        :func:`pair_mlp`'s ``x_bits``.

    Shapes:
        - h, incoming, outgoing: ``(N, H)`` -> ``(N, H)``
    """
    linears, norms = mlp_parts(mlp)
    dtype = _dtype(precision)
    bf16 = dtype == torch.bfloat16
    layers = _Layers.of(linears, norms, dtype)
    first = linears[0]
    n = h.shape[1]
    w = first.weight.detach()
    if bf16:
        w_low = w.T.contiguous().to(dtype)  # one product over the packed (C, 3 H) block
    else:
        blocks = (w[:, :n].T, w[:, n : 2 * n].T, w[:, 2 * n :].T)
    ws = ws if ws is not None else Workspace()
    out = ws.get(out_name, tuple(h.shape))
    out_bits = ws.get(out_name + "_bits", tuple(h.shape) if bf16 else (0, 0), dtype)
    size = min(CHUNK, h.shape[0])
    v_buf, spare_buf, lin_buf, lout_buf = layers.buffers(ws, size)
    packed = ws.get("packed", (size, 3 * n) if bf16 else (0, 0), dtype)
    parts = (h.contiguous().numpy(), incoming.numpy(), outgoing.numpy())
    hb = _bits(h_bits) if h_bits is not None else _NO_BITS
    bias = first.bias.detach()
    bias_np = bias.numpy()
    for a in range(0, h.shape[0], CHUNK):
        b = min(a + CHUNK, h.shape[0])
        v = v_buf[: b - a]
        if bf16:
            _pack_bits(
                parts[0], hb, h_bits is not None, parts[1], parts[2], a, _bits(packed[: b - a])
            )
            torch.mm(packed[: b - a], w_low, out=lout_buf[: b - a])
        else:
            torch.addmm(bias, h[a:b], blocks[0], out=v)
            v.addmm_(incoming[a:b], blocks[1])
            v.addmm_(outgoing[a:b], blocks[2])
        v = layers.run(v, spare_buf[: b - a], lin_buf, lout_buf, int(bf16), bias_np)
        _residual_rows(
            parts[0], v.numpy(), a, out.numpy(), _bits(out_bits) if bf16 else _NO_BITS, bf16
        )
    return out, (out_bits if bf16 else None)
