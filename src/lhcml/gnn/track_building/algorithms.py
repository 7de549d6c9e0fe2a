"""Track building: turn scored edges into tracks (hit to track assignments).

Methods (:func:`build_tracks`):

- ``cc``: connected components of the edges scoring above a threshold
  (:func:`connected_components`, scipy.sparse.csgraph). Fast, but two tracks joined by one
  wrong edge become one merged track.
- ``junction``: junction resolution first: an edge is kept only if it is the best-scored
  outgoing edge of its source hit *and* the best-scored incoming edge of its target, so no
  hit has two successors or two predecessors; components are then simple paths (a Y
  junction is split, its weaker branch dropped).
- ``walk``: walkthrough (:func:`walkthrough`, numba): hits in order of distance from the
  origin start a walk that follows, hit by hit, the highest-scored edge to a hit not yet on
  a track.
- ``longest``: longest paths (:func:`longest_paths`, numba): with edges pointing away from
  the origin the graph is acyclic, so the longest path above ``walk_threshold`` starting at
  each hit is found by dynamic programming; tracks are taken longest first, each following
  its path until a hit already taken. At a junction the branch that continues longest wins,
  not the locally best edge.
- ``cc_walk`` (default): components above ``cc_threshold`` that are simple paths (no hit
  with two successors or predecessors, no cycle) are tracks as they are; the hits of the
  other components are walked through with ``walk_threshold``.

Stitching (:func:`stitch_segments`, any method, ``stitch_threshold``): a particle whose
consecutive-hit edge scores just below the cut is built as two pieces (a duplicate when
both have >= 5 hits; in ttbar mu = 200 almost all duplicates are such splits, mostly in
the pixel endcaps). A piece's outermost hit is joined to another piece's innermost hit
when the edge between them (or a two-edge bridge over a hit on no track) scores at least
``stitch_threshold``, the best-scored links first, each end and start used once.

Second pass (any method, ``second_threshold``): the hits no track took are built again with
longest paths over their edges scoring at least ``second_threshold`` (below the cut), and
new tracks of at least ``second_min_hits`` hits are kept. It recovers particles none of
whose edges reached the cut (in ttbar mu = 200: straight high-pT tracks in the pixel
barrel, rare in training) without lowering the cut where tracks compete for hits.

Tracks shorter than ``min_hits`` are dissolved: their hits get track id -1 (unassigned,
lhcml's convention in submissions).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc

from lhcml.errors import ConfigError

METHODS: tuple[str, ...] = ("cc", "junction", "walk", "longest", "cc_walk")


def connected_components(n_nodes: int, edge_index: np.ndarray) -> np.ndarray:
    """Component label of every node of the (undirected) graph; ``(N,)`` int64."""
    if edge_index.shape[1] == 0:
        return np.arange(n_nodes, dtype=np.int64)
    a = sp.coo_matrix(
        (np.ones(edge_index.shape[1], np.int8), (edge_index[0], edge_index[1])),
        shape=(n_nodes, n_nodes),
    ).tocsr()
    _, labels = _cc(a, directed=False)
    return labels.astype(np.int64)


def best_edges(n_nodes: int, edge_index: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mask of edges that are both the best outgoing edge of their source and the best
    incoming edge of their target (ties: the lower edge index)."""
    e = edge_index.shape[1]
    if e == 0:
        return np.zeros(0, bool)
    order = np.lexsort((np.arange(e), -scores))  # best first
    best_out = np.full(n_nodes, -1, np.int64)
    best_in = np.full(n_nodes, -1, np.int64)
    # Assign in reverse so the best edge (first in `order`) is written last and wins.
    rev = order[::-1]
    best_out[edge_index[0, rev]] = rev
    best_in[edge_index[1, rev]] = rev
    idx = np.arange(e)
    return (best_out[edge_index[0]] == idx) & (best_in[edge_index[1]] == idx)


def _relabel(labels: np.ndarray, min_hits: int) -> np.ndarray:
    """Track ids 0..k-1 for groups of at least ``min_hits`` nodes, -1 elsewhere."""
    out = np.full(len(labels), -1, np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    _uniq, inv, cnt = np.unique(labels[valid], return_inverse=True, return_counts=True)
    keep = cnt >= min_hits
    new_id = np.cumsum(keep) - 1
    out[valid] = np.where(keep[inv], new_id[inv], -1)
    return out


@numba.njit(cache=True)
def _walk(
    n_nodes: int,
    indptr: np.ndarray,
    targets: np.ndarray,
    start_order: np.ndarray,
    allowed: np.ndarray,
    labels: np.ndarray,
    first_label: int,
) -> int:  # pragma: no cover - compiled
    # Out-edges of each node are sorted best first; `labels` >= 0 marks taken nodes.
    next_label = first_label
    for s in start_order:
        if labels[s] >= 0 or not allowed[s]:
            continue
        labels[s] = next_label
        cur = s
        while True:
            nxt = -1
            for k in range(indptr[cur], indptr[cur + 1]):
                t = targets[k]
                if labels[t] < 0 and allowed[t]:
                    nxt = t
                    break
            if nxt < 0:
                break
            labels[nxt] = next_label
            cur = nxt
        next_label += 1
    return next_label


def walkthrough(
    n_nodes: int,
    edge_index: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    order_key: np.ndarray,
    *,
    allowed: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy walkthrough along the highest-scored edges.

    Hits are taken in increasing ``order_key`` (distance from the origin); each hit not yet
    on a track starts a new one and the walk follows, from hit to hit, the best-scored
    outgoing edge above ``threshold`` that leads to a free hit.

    Args:
        n_nodes: number of hits.
        edge_index: ``(2, E)`` directed edges (inner to outer hit).
        scores: ``(E,)`` edge scores.
        threshold: edges below are not followed.
        order_key: ``(N,)`` order in which hits start walks.
        allowed: ``(N,)`` bool, hits that may be walked (default: all).
        labels: ``(N,)`` existing labels (>= 0 taken); new labels continue after the
            largest.

    Returns:
        ``(N,)`` int64 group label of every allowed hit (each hit its own group at least).
    """
    keep = scores >= threshold
    src, dst, sc = edge_index[0, keep], edge_index[1, keep], scores[keep]
    order = np.lexsort((-sc, src))  # by source, best score first
    src, dst = src[order], dst[order]
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    labels = np.full(n_nodes, -1, np.int64) if labels is None else labels.astype(np.int64)
    allowed = np.ones(n_nodes, np.bool_) if allowed is None else allowed.astype(np.bool_)
    start_order = np.argsort(order_key, kind="stable").astype(np.int64)
    first = int(labels.max()) + 1 if len(labels) else 0
    _walk(n_nodes, indptr, dst.astype(np.int64), start_order, allowed, labels, max(first, 0))
    return labels


@numba.njit(cache=True)
def _longest(
    n_nodes: int,
    indptr: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    descending: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    # Nodes from the outside in: every successor is final when its predecessor is seen.
    length = np.ones(n_nodes, np.int64)
    total = np.zeros(n_nodes, np.float64)
    nxt = np.full(n_nodes, -1, np.int64)
    for v in descending:
        for k in range(indptr[v], indptr[v + 1]):
            w = targets[k]
            cand = length[w] + 1
            score = total[w] + weights[k]
            if cand > length[v] or (cand == length[v] and score > total[v]):
                length[v] = cand
                total[v] = score
                nxt[v] = w
    return length, nxt


@numba.njit(cache=True)
def _follow(
    order: np.ndarray, nxt: np.ndarray, labels: np.ndarray, first_label: int
) -> None:  # pragma: no cover - compiled
    label = first_label
    for s in order:
        if labels[s] >= 0:
            continue
        v = s
        while v >= 0 and labels[v] < 0:
            labels[v] = label
            v = nxt[v]
        label += 1


def longest_paths(
    n_nodes: int,
    edge_index: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    order_key: np.ndarray,
    *,
    allowed: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Tracks along longest paths (ties: the higher summed score).

    Edges above ``threshold`` are pointed from the hit with the smaller ``order_key`` to the
    larger, which makes the graph acyclic; the longest path from every hit follows by
    dynamic programming from the outermost hit in. Hits are then taken by decreasing path
    length: each free hit starts a track that follows its path while the hits are free.

    Args: as :func:`walkthrough`.

    Returns:
        ``(N,)`` int64 group label of every allowed hit.
    """
    allowed = np.ones(n_nodes, np.bool_) if allowed is None else allowed.astype(np.bool_)
    src, dst = edge_index
    keep = (scores >= threshold) & allowed[src] & allowed[dst] & (src != dst)
    src, dst, sc = src[keep], dst[keep], scores[keep]
    rank = np.empty(n_nodes, np.int64)
    rank[np.argsort(order_key, kind="stable")] = np.arange(n_nodes)
    flip = rank[src] > rank[dst]
    src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
    order = np.argsort(src, kind="stable")
    src, dst, sc = src[order], dst[order], sc[order]
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    descending = np.argsort(-rank, kind="stable").astype(np.int64)
    length, nxt = _longest(n_nodes, indptr, dst.astype(np.int64), sc.astype(np.float64), descending)
    labels = np.full(n_nodes, -1, np.int64) if labels is None else labels.astype(np.int64)
    labels = np.where(allowed, labels, np.maximum(labels, -1))
    first = int(labels.max()) + 1 if len(labels) else 0
    start = np.lexsort((rank, -length))  # longest first, inner first
    start = start[allowed[start]].astype(np.int64)
    _follow(start, nxt, labels, max(first, 0))
    return labels


def _segment_ends(labels: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per segment (labels 0..k-1): innermost node, outermost node, number of nodes."""
    k = int(labels.max()) + 1 if len(labels) else 0
    order = np.lexsort((order_key, labels))  # by segment, inside out
    lab = labels[order]
    first = np.r_[True, lab[1:] != lab[:-1]] if len(lab) else np.zeros(0, bool)
    last = np.r_[lab[1:] != lab[:-1], True] if len(lab) else np.zeros(0, bool)
    start = np.full(k, -1, np.int64)
    end = np.full(k, -1, np.int64)
    start[lab[first]] = order[first]
    end[lab[last]] = order[last]
    return start, end, np.bincount(labels, minlength=k)


def stitch_segments(
    edge_index: np.ndarray,
    scores: np.ndarray,
    order_key: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    *,
    min_hits: int = 1,
    unique: bool = False,
) -> np.ndarray:
    """Join pieces of one particle's track end to start.

    A link joins the outermost hit ``u`` of segment A (by ``order_key``) to the innermost
    hit ``v`` of segment B (A != B, ``order_key[u] < order_key[v]``) when the edge ``u-v``
    scores at least ``threshold``, or through a bridge ``u-w-v`` over a single-hit
    segment ``w`` (a hit on no track) with both edges at least ``threshold`` (the link
    scores the weaker edge). Links are taken best first; each segment is continued once
    at its end and once at its start, so tracks stay simple chains (two parallel tracks
    are joined only if one's last hit links to the other's first hit).

    Args:
        edge_index: ``(2, E)`` edges (either direction).
        scores: ``(E,)`` edge scores.
        order_key: ``(N,)`` distance of each hit from the origin.
        labels: ``(N,)`` segment of each hit (< 0: on none, a segment of its own).
        threshold: lowest score of a stitching edge.
        min_hits: segments A and B need at least this many hits (bridges are single hits).

    Returns:
        ``(N,)`` int64 labels with stitched segments sharing the label of the innermost.
    """
    labels = np.asarray(labels, np.int64).copy()
    n = len(labels)
    free = labels < 0
    if free.any():  # hits on no segment: each its own segment
        base = int(labels.max()) + 1 if (~free).any() else 0
        labels[free] = base + np.arange(int(free.sum()))
    if n == 0 or edge_index.shape[1] == 0:
        return labels
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.astype(np.int64)
    start, end, size = _segment_ends(labels, order_key)
    src, dst = np.asarray(edge_index, np.int64)
    keep = (scores >= threshold) & (labels[src] != labels[dst])
    src, dst, sc = src[keep], dst[keep], np.asarray(scores, np.float64)[keep]
    flip = order_key[src] > order_key[dst]
    src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
    ok = order_key[src] < order_key[dst]
    src, dst, sc = src[ok], dst[ok], sc[ok]
    la, lb = labels[src], labels[dst]
    at_end = end[la] == src
    at_start = start[lb] == dst
    big_a, big_b = size[la] >= min_hits, size[lb] >= min_hits
    # Direct links: end of A -> start of B.
    d = at_end & at_start & big_a & big_b
    cand_a, cand_b, cand_w, cand_s = [la[d]], [lb[d]], [np.full(int(d.sum()), -1)], [sc[d]]
    # Bridges: end of A -> single hit w -> start of B.
    single = size == 1
    i1 = np.flatnonzero(at_end & big_a & single[lb])  # A -> w
    i2 = np.flatnonzero(at_start & big_b & single[la])  # w -> B
    if len(i1) and len(i2):
        o2 = np.argsort(la[i2], kind="stable")
        w2 = la[i2][o2]
        lo = np.searchsorted(w2, lb[i1], "left")
        hi = np.searchsorted(w2, lb[i1], "right")
        reps = hi - lo
        first = np.repeat(i1, reps)
        # Every (A -> w, w -> B) pair: positions lo..hi-1 of the w-sorted second edges.
        offset = np.repeat(lo - (np.cumsum(reps) - reps), reps)
        second = i2[o2][offset + np.arange(int(reps.sum()))]
        good = la[first] != lb[second]
        first, second = first[good], second[good]
        cand_a.append(la[first])
        cand_b.append(lb[second])
        cand_w.append(lb[first])
        cand_s.append(np.minimum(sc[first], sc[second]))
    ca, cb, cw, cs = (np.concatenate(c) for c in (cand_a, cand_b, cand_w, cand_s))
    if unique:
        # Only ends with one candidate link: in dense jet cores several pieces of
        # neighbouring particles compete for one end, and stitching there makes chimeras.
        k = len(size)
        once = (np.bincount(ca, minlength=k)[ca] == 1) & (np.bincount(cb, minlength=k)[cb] == 1)
        ca, cb, cw, cs = ca[once], cb[once], cw[once], cs[once]
    order = np.argsort(-cs, kind="stable")
    joined = _stitch(ca[order], cb[order], cw[order], len(size))
    return joined[labels]


@numba.njit(cache=True)
def _root(parent: np.ndarray, i: int) -> int:  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True)
def _stitch(
    ca: np.ndarray, cb: np.ndarray, cw: np.ndarray, k: int
) -> np.ndarray:  # pragma: no cover - compiled
    # Greedy over links best first; union-find roots give the merged segment.
    parent = np.arange(k)
    end_used = np.zeros(k, np.bool_)
    start_used = np.zeros(k, np.bool_)
    for j in range(len(ca)):
        a, b, w = ca[j], cb[j], cw[j]
        if end_used[a] or start_used[b]:
            continue
        if w >= 0 and (start_used[w] or end_used[w]):
            continue
        ra, rb = _root(parent, a), _root(parent, b)
        if ra == rb or (w >= 0 and _root(parent, w) in (ra, rb)):
            continue
        end_used[a] = True
        start_used[b] = True
        parent[rb] = ra
        if w >= 0:
            start_used[w] = True
            end_used[w] = True
            parent[_root(parent, w)] = ra
    out = np.empty(k, np.int64)
    for i in range(k):
        out[i] = _root(parent, i)
    return out


def second_pass(
    edge_index: np.ndarray,
    scores: np.ndarray,
    order_key: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    *,
    min_hits: int = 5,
) -> np.ndarray:
    """Longest-path tracks over the hits no track took, with a lower edge cut.

    Args:
        edge_index, scores, order_key: as :func:`build_tracks`.
        labels: ``(N,)`` track ids 0..k-1 of the first pass, -1 on no track.
        threshold: edge cut of the second pass.
        min_hits: new tracks shorter than this are dissolved.

    Returns:
        ``(N,)`` track ids 0..k'-1: the first pass's, then the new tracks; -1 elsewhere.
    """
    n = len(labels)
    labels = np.asarray(labels, np.int64)
    first_new = int(labels.max()) + 1 if n else 0
    out = longest_paths(
        n, edge_index, scores, threshold, order_key, allowed=labels < 0, labels=labels
    )
    new = out >= first_new
    size = np.bincount(out[new] - first_new) if new.any() else np.zeros(0, np.int64)
    short = np.zeros(n, bool)
    short[new] = size[out[new] - first_new] < min_hits
    out[short] = -1
    return _relabel(out, 1)


def build_tracks(
    n_nodes: int,
    edge_index: np.ndarray,
    scores: np.ndarray,
    order_key: np.ndarray,
    *,
    method: str = "cc_walk",
    cc_threshold: float = 0.5,
    walk_threshold: float = 0.5,
    min_hits: int = 3,
    stitch_threshold: float | None = None,
    stitch_min_hits: int = 1,
    stitch_unique: bool = False,
    second_threshold: float | None = None,
    second_min_hits: int = 5,
) -> np.ndarray:
    """Group hits into tracks.

    Args:
        n_nodes: number of hits.
        edge_index: ``(2, E)`` directed edges (inner to outer hit).
        scores: ``(E,)`` edge scores in [0, 1].
        order_key: ``(N,)`` distance of each hit from the origin (walk order).
        method: ``cc``, ``junction``, ``walk``, ``longest`` or ``cc_walk`` (module
            docstring).
        cc_threshold: edge threshold of the connected components.
        walk_threshold: edge threshold of the walkthrough.
        min_hits: shorter tracks are dissolved.
        stitch_threshold: join pieces end to start over edges scoring at least this
            (:func:`stitch_segments`; ``None``: no stitching).
        stitch_min_hits: pieces shorter than this are not stitched (but may bridge).
        stitch_unique: stitch only ends with a single candidate.
        second_threshold: build the hits left on no track again, with longest paths over
            edges scoring at least this (:func:`second_pass`; ``None``: no second pass).
        second_min_hits: shortest track the second pass keeps.

    Returns:
        ``(N,)`` int64 track id of each hit (0..k-1), -1 for unassigned hits.

    Raises:
        ConfigError: unknown method, bad stitching settings.
    """
    if method not in METHODS:
        raise ConfigError(f"track building: method '{method}' unknown; choose from {METHODS}")
    if stitch_threshold is not None and not 0.0 <= float(stitch_threshold) <= 1.0:
        raise ConfigError(
            f"track_building.stitch_threshold: {stitch_threshold} is not a score in [0, 1]"
        )
    if int(stitch_min_hits) < 1:
        raise ConfigError(f"track_building.stitch_min_hits: {stitch_min_hits} is below 1")
    if second_threshold is not None and not 0.0 <= float(second_threshold) <= 1.0:
        raise ConfigError(
            f"track_building.second_threshold: {second_threshold} is not a score in [0, 1]"
        )
    edge_index = np.asarray(edge_index, np.int64)
    scores = np.asarray(scores, np.float64)
    order_key = np.asarray(order_key, np.float64)

    def done(labels: np.ndarray) -> np.ndarray:
        if stitch_threshold is not None:
            labels = stitch_segments(
                edge_index,
                scores,
                order_key,
                labels,
                float(stitch_threshold),
                min_hits=int(stitch_min_hits),
                unique=bool(stitch_unique),
            )
        labels = _relabel(labels, min_hits)
        if second_threshold is not None:
            labels = second_pass(
                edge_index,
                scores,
                order_key,
                labels,
                float(second_threshold),
                min_hits=max(int(second_min_hits), int(min_hits)),
            )
        return labels

    if method == "walk":
        return done(walkthrough(n_nodes, edge_index, scores, walk_threshold, order_key))
    if method == "longest":
        return done(longest_paths(n_nodes, edge_index, scores, walk_threshold, order_key))
    sel = scores >= cc_threshold
    if method == "junction":
        sub = edge_index[:, sel]
        sel_best = best_edges(n_nodes, sub, scores[sel])
        return done(connected_components(n_nodes, sub[:, sel_best]))
    sub = edge_index[:, sel]
    labels = connected_components(n_nodes, sub)
    if method == "cc":
        return done(labels)
    # cc_walk: simple-path components stay; the others are walked through.
    n_comp = int(labels.max()) + 1 if n_nodes else 0
    out_deg = np.bincount(sub[0], minlength=n_nodes)
    in_deg = np.bincount(sub[1], minlength=n_nodes)
    bad_node = (out_deg > 1) | (in_deg > 1)
    comp_bad = np.bincount(labels, weights=bad_node, minlength=n_comp) > 0
    comp_nodes = np.bincount(labels, minlength=n_comp)
    comp_edges = np.bincount(labels[sub[0]], minlength=n_comp)
    comp_bad |= comp_edges != comp_nodes - 1  # a cycle
    walk = comp_bad[labels]
    fixed = np.where(walk, -1, labels)
    labels = walkthrough(
        n_nodes, edge_index, scores, walk_threshold, order_key, allowed=walk, labels=fixed
    )
    return done(labels)
