"""Hit (node) features, edge features and truth edge labels of the GNN chain.

**Nodes** are the event's hits, in the order of ``event.hits`` (row ``i`` of every graph
tensor is hit ``hit_id[i]``). Their features (:data:`NODE_FEATURES`) are the cylindrical
position and pseudorapidity, scaled to order one (:data:`SCALES`); where the event has
cells and a detector description, the cluster-shape features of
:func:`lhcml.io.cell_features` can be appended (:data:`CELL_FEATURES`; zeros for an
event without cells, so a model trained with them still runs).

**Edges** are directed, from the hit nearer to the particle's origin to the farther one.
Their features (:data:`EDGE_FEATURES`, computed from the node features on the fly, so
graphs on disk stay small) are the differences ``dr, dphi, dz, deta`` and the slopes
``phi_slope = dphi / dr`` and ``rphi_slope = r_mean * dphi / dr`` of the two hits, as in
the Exa.TrkX / GNN4ITk (acorn) Interaction Network, and the doublet's ``z0`` (its line in
(r, z) at r = 0), which separates true from fake doublets best. Models standardise
them (:class:`lhcml.gnn.mlp.Standardize`).

**Truth edges** join consecutive hits of one particle, the hits ordered by their distance
from the particle's production vertex. A graph edge is *true* if its two hits form a truth
edge (either direction); it is a *target* edge if, besides, its particle passes the target
selection (:class:`~lhcml.metrics.FiducialSelection`, by default pT > 1 GeV, |eta| < 4,
primary, not an electron, >= 3 hits): efficiencies are measured on target edges, and true
edges of other particles are left out of the training loss (neither signal nor fake).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lhcml.errors import InputError
from lhcml.metrics.tracking import FiducialSelection

if TYPE_CHECKING:
    import torch

    from lhcml.data.event import Event

#: Node features, in column order: cylindrical r, azimuth, z, pseudorapidity of the hit.
NODE_FEATURES: tuple[str, ...] = ("r", "phi", "z", "eta")
#: Cluster-shape features appended with ``cells=True`` (see :func:`lhcml.io.cell_features`).
CELL_FEATURES: tuple[str, ...] = (
    "cell_count",
    "cell_val",
    "len_u",
    "len_v",
    "cluster_eta",
    "cluster_phi",
)
#: Scale dividing each feature: positions in m, phi in units of pi, ...
SCALES: dict[str, float] = {
    "r": 1000.0,
    "phi": np.pi,
    "z": 1000.0,
    "eta": 1.0,
    "cell_count": 10.0,
    "cell_val": 1.0,
    "len_u": 1.0,
    "len_v": 1.0,
    "cluster_eta": 1.0,
    "cluster_phi": np.pi,
}
#: Edge features, in column order.
EDGE_FEATURES: tuple[str, ...] = (
    "dr",
    "dphi",
    "dz",
    "deta",
    "phi_slope",
    "rphi_slope",
    "z0",
)

#: The default target particles of the chain (the issue's fiducial selection).
DEFAULT_TARGET = FiducialSelection(
    pt_min=1.0, abs_eta_max=4.0, min_hits=3, primary_only=True, exclude_electrons=True
)


def feature_names(cells: bool = False) -> tuple[str, ...]:
    """Names of the node feature columns (with or without the cluster-shape block)."""
    return NODE_FEATURES + (CELL_FEATURES if cells else ())


def node_features(
    hits: pd.DataFrame,
    *,
    cells: pd.DataFrame | None = None,
    use_cells: bool = False,
) -> np.ndarray:
    """Scaled node features of every hit.

    Args:
        hits: ``x, y, z`` [mm] of each hit.
        cells: per-hit cluster-shape table from :func:`lhcml.io.cell_features`, aligned
            with ``hits`` (``None``: the event has no cells; the block is zero).
        use_cells: append the :data:`CELL_FEATURES` block.

    Returns:
        ``(n_hits, n_features)`` float32, columns :func:`feature_names`.
    """
    x = hits["x"].to_numpy(np.float64)
    y = hits["y"].to_numpy(np.float64)
    z = hits["z"].to_numpy(np.float64)
    r = np.hypot(x, y)
    cols = [
        r / SCALES["r"],
        np.arctan2(y, x) / SCALES["phi"],
        z / SCALES["z"],
        np.arcsinh(z / np.maximum(r, 1e-3)) / SCALES["eta"],
    ]
    if use_cells:
        for name in CELL_FEATURES:
            if cells is None:
                cols.append(np.zeros(len(hits)))
            else:
                cols.append(cells[name].to_numpy(np.float64) / SCALES[name])
    return np.column_stack(cols).astype(np.float32)


def edge_features(x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Edge features from the first four (scaled ``r, phi, z, eta``) node features.

    Args:
        x: node features, columns starting with :data:`NODE_FEATURES`.
        edge_index: ``(2, E)`` source and target rows.

    Returns:
        ``(E, 7)`` features :data:`EDGE_FEATURES` (``dphi`` wrapped into [-1, 1), i.e.
        [-pi, pi) in units of pi; slopes and ``z0`` clamped to +-10 where ``dr``
        vanishes).

    Shapes:
        - x: ``(N, F)``, edge_index: ``(2, E)`` -> ``(E, 7)``
    """
    import torch

    src, dst = edge_index[0], edge_index[1]
    r1, r2 = x[src, 0], x[dst, 0]
    dr = r2 - r1
    dphi = torch.remainder(x[dst, 1] - x[src, 1] + 1.0, 2.0) - 1.0
    dz = x[dst, 2] - x[src, 2]
    deta = x[dst, 3] - x[src, 3]
    safe = torch.where(dr.abs() < 1e-4, torch.full_like(dr, 1e-4), dr)
    phi_slope = (dphi / safe).clamp(-10.0, 10.0)
    rphi_slope = (0.5 * (r1 + r2) * dphi / safe).clamp(-10.0, 10.0)
    z0 = (x[src, 2] - r1 * dz / safe).clamp(-10.0, 10.0)
    return torch.stack([dr, dphi, dz, deta, phi_slope, rphi_slope, z0], dim=1)


def truth_edges(event: Event) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive hits of every particle, ordered by distance from its vertex.

    Args:
        event: an event with truth and particles.

    Returns:
        ``(edges, particle_id)``: ``(2, T)`` int64 rows into ``event.hits`` (inner hit
        first), and the particle of each truth edge.

    Raises:
        InputError: the event has no truth.
    """
    if event.truth is None or event.particles is None:
        raise InputError(f"event {event.event_id} has no truth / particles for edge labels")
    hits = event.hits
    truth = event.truth
    row = pd.Index(hits["hit_id"].to_numpy()).get_indexer(truth["hit_id"].to_numpy())
    if (row < 0).any():
        raise InputError("truth lists hit ids that are not in hits", column="hit_id")
    pid = truth["particle_id"].to_numpy(np.int64)
    # True positions where known (they order the hits of overlapping modules exactly).
    cols = ("tx", "ty", "tz") if {"tx", "ty", "tz"} <= set(truth.columns) else None
    if cols is not None:
        pos = truth[list(cols)].to_numpy(np.float64)
    else:
        pos = hits[["x", "y", "z"]].to_numpy(np.float64)[row]
    parts = event.particles
    vtx = parts.set_index("particle_id")[["vx", "vy", "vz"]]
    vtx = vtx[~vtx.index.duplicated()]
    v = vtx.reindex(pid).to_numpy(np.float64)
    v = np.where(np.isnan(v), 0.0, v)  # hits of particles missing from the table: origin
    dist = np.linalg.norm(pos - v, axis=1)
    keep = pid != 0
    pid, row, dist = pid[keep], row[keep], dist[keep]
    order = np.lexsort((dist, pid))
    pid, row = pid[order], row[order]
    same = pid[1:] == pid[:-1]
    edges = np.vstack([row[:-1][same], row[1:][same]]).astype(np.int64)
    return edges, pid[:-1][same]


def target_particles(event: Event, selection: FiducialSelection = DEFAULT_TARGET) -> np.ndarray:
    """Particle ids of the event passing ``selection`` (hits counted in ``truth``)."""
    assert event.truth is not None and event.particles is not None
    pid_truth = event.truth["particle_id"].to_numpy(np.int64)
    counts = pd.Series(pid_truth[pid_truth != 0]).value_counts()
    pids = event.particles["particle_id"].to_numpy(np.int64)
    nhits = counts.reindex(pids).fillna(0).to_numpy(np.int64)
    return pids[selection.select(event.particles, nhits)]


def _pair_keys(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Undirected pair key of node rows ``a, b``."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo.astype(np.int64) * n + hi


def edge_truth(
    edge_index: np.ndarray,
    truth_edge_index: np.ndarray,
    truth_target: np.ndarray,
    n_nodes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Label graph edges as true (a truth edge, either direction) and as target.

    Args:
        edge_index: ``(2, E)`` graph edges.
        truth_edge_index: ``(2, T)`` truth edges.
        truth_target: ``(T,)`` whether each truth edge belongs to a target particle.
        n_nodes: number of hits.

    Returns:
        ``(y, target)``, both ``(E,)`` bool.
    """
    keys = _pair_keys(truth_edge_index[0], truth_edge_index[1], n_nodes)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    tgt = truth_target[order]
    q = _pair_keys(edge_index[0], edge_index[1], n_nodes)
    pos = np.searchsorted(keys, q)
    pos_c = np.minimum(pos, max(len(keys) - 1, 0))
    y = (pos < len(keys)) & (keys[pos_c] == q) if len(keys) else np.zeros(len(q), bool)
    target = y & tgt[pos_c] if len(keys) else np.zeros(len(q), bool)
    return y, target


def truth_edges_found(
    edge_index: np.ndarray, truth_edge_index: np.ndarray, n_nodes: int
) -> np.ndarray:
    """Whether each truth edge is among the graph edges (either direction); ``(T,)`` bool."""
    keys = np.sort(_pair_keys(edge_index[0], edge_index[1], n_nodes))
    q = _pair_keys(truth_edge_index[0], truth_edge_index[1], n_nodes)
    pos = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
    return keys[pos] == q if len(keys) else np.zeros(len(q), bool)


@dataclass
class EventGraph:
    """One event as a graph (numpy): what every stage reads and writes.

    Attributes:
        event_id: the event.
        hit_id: ``(N,)`` hit ids, node ``i`` is hit ``hit_id[i]``.
        x: ``(N, F)`` float32 scaled node features (:func:`feature_names`).
        edge_index: ``(2, E)`` int64 directed edges.
        scores: ``(E,)`` float32 edge scores of the last classifier run, or ``None``.
        y, target: ``(E,)`` bool truth labels (``None`` without truth).
        truth_edge_index: ``(2, T)`` truth edges; truth_target: ``(T,)`` bool.
        particle_id: ``(N,)`` int64 particle of each hit (0 noise; ``None`` without truth).
        particle_pt, particle_vz: ``(N,)`` float32 transverse momentum [GeV] and
            production-vertex z [mm] of that particle (0 for noise; ``None`` without truth),
            for weighted training losses.
    """

    event_id: int
    hit_id: np.ndarray
    x: np.ndarray
    edge_index: np.ndarray
    scores: np.ndarray | None = None
    y: np.ndarray | None = None
    target: np.ndarray | None = None
    truth_edge_index: np.ndarray | None = None
    truth_target: np.ndarray | None = None
    particle_id: np.ndarray | None = None
    particle_pt: np.ndarray | None = None
    particle_vz: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        """Number of hits."""
        return len(self.hit_id)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return self.edge_index.shape[1]

    @property
    def has_truth(self) -> bool:
        """Whether labels are present."""
        return self.y is not None and self.truth_edge_index is not None

    def relabel(self) -> None:
        """Recompute ``y`` and ``target`` after the edges changed."""
        if self.truth_edge_index is not None and self.truth_target is not None:
            self.y, self.target = edge_truth(
                self.edge_index, self.truth_edge_index, self.truth_target, self.n_nodes
            )

    def subgraph(self, keep: np.ndarray) -> EventGraph:
        """The same graph with only the edges where ``keep`` is true."""
        return EventGraph(
            event_id=self.event_id,
            hit_id=self.hit_id,
            x=self.x,
            edge_index=self.edge_index[:, keep],
            scores=None if self.scores is None else self.scores[keep],
            y=None if self.y is None else self.y[keep],
            target=None if self.target is None else self.target[keep],
            truth_edge_index=self.truth_edge_index,
            truth_target=self.truth_target,
            particle_id=self.particle_id,
            particle_pt=self.particle_pt,
            particle_vz=self.particle_vz,
        )

    def to_dict(self) -> dict[str, Any]:
        """Tensors for ``torch.save`` (loadable with ``weights_only=True``)."""
        import torch

        out: dict[str, Any] = {"event_id": torch.tensor(self.event_id, dtype=torch.int64)}
        for name in (
            "hit_id",
            "x",
            "edge_index",
            "scores",
            "y",
            "target",
            "truth_edge_index",
            "truth_target",
            "particle_id",
            "particle_pt",
            "particle_vz",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = torch.from_numpy(np.array(value, copy=True))  # owned, writable
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EventGraph:
        """Inverse of :meth:`to_dict`."""

        def get(name: str) -> np.ndarray | None:
            v = d.get(name)
            return None if v is None else v.numpy()

        return cls(
            event_id=int(d["event_id"]),
            hit_id=d["hit_id"].numpy(),
            x=d["x"].numpy(),
            edge_index=d["edge_index"].numpy(),
            scores=get("scores"),
            y=get("y"),
            target=get("target"),
            truth_edge_index=get("truth_edge_index"),
            truth_target=get("truth_target"),
            particle_id=get("particle_id"),
            particle_pt=get("particle_pt"),
            particle_vz=get("particle_vz"),
        )


def event_nodes(
    event: Event,
    *,
    use_cells: bool = False,
    detectors: pd.DataFrame | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
) -> EventGraph:
    """The event's nodes and truth (no edges yet).

    Args:
        event: the event (truth optional).
        use_cells: add cluster-shape features (needs ``event.cells`` and ``detectors``;
            zeros otherwise).
        detectors: TrackML detector table for the cell features.
        target: selection of the target particles.

    Returns:
        An :class:`EventGraph` with an empty edge list.
    """
    cells = None
    if use_cells and event.cells is not None and detectors is not None:
        from lhcml.io import cell_features

        cells = cell_features(event.hits, event.cells, detectors)
    graph = EventGraph(
        event_id=event.event_id,
        hit_id=event.hits["hit_id"].to_numpy(np.int64),
        x=node_features(event.hits, cells=cells, use_cells=use_cells),
        edge_index=np.zeros((2, 0), np.int64),
    )
    if event.has_truth:
        tedges, tpid = truth_edges(event)
        graph.truth_edge_index = tedges
        graph.truth_target = np.isin(tpid, target_particles(event, target))
        assert event.truth is not None
        pid = event.truth.set_index("hit_id")["particle_id"].reindex(graph.hit_id)
        graph.particle_id = pid.fillna(0).to_numpy(np.int64)
        graph.particle_pt, graph.particle_vz = particle_pt_vz(event, graph.particle_id)
    return graph


def particle_pt_vz(event: Event, particle_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Transverse momentum [GeV] and production-vertex z [mm] of each listed particle
    (0 for noise and unknown ids; vz 0 where the table has no ``vz``)."""
    assert event.particles is not None
    parts = event.particles.drop_duplicates("particle_id").set_index("particle_id")
    pt = np.hypot(parts["px"], parts["py"]).reindex(particle_id)
    vz = parts["vz"].reindex(particle_id) if "vz" in parts.columns else pt * 0.0
    return pt.fillna(0.0).to_numpy(np.float32), vz.fillna(0.0).to_numpy(np.float32)


def graph_metrics(graphs: Sequence[EventGraph], mask: Sequence[np.ndarray] | None = None) -> dict:
    """Edge efficiency (target truth edges in the graph) and purity, summed over events.

    Args:
        graphs: graphs with truth.
        mask: per graph, the edges counted as selected (default: all edges).

    Returns:
        ``efficiency`` (target truth edges found / target truth edges), ``purity``
        (selected true edges / selected edges), ``target_purity`` (selected target edges /
        selected edges), ``edges_per_event``, ``nodes_per_event`` and the counts.
    """
    n_target = n_found = n_sel = n_true = n_tsel = 0
    for i, g in enumerate(graphs):
        if not g.has_truth:
            raise InputError(f"graph of event {g.event_id} has no truth labels")
        keep = np.ones(g.n_edges, bool) if mask is None else np.asarray(mask[i], bool)
        assert g.truth_edge_index is not None and g.truth_target is not None
        assert g.y is not None and g.target is not None
        found = truth_edges_found(g.edge_index[:, keep], g.truth_edge_index, g.n_nodes)
        n_target += int(g.truth_target.sum())
        n_found += int((found & g.truth_target).sum())
        n_sel += int(keep.sum())
        n_true += int((g.y & keep).sum())
        n_tsel += int((g.target & keep).sum())
    n_ev = max(len(graphs), 1)
    return {
        "efficiency": n_found / max(n_target, 1),
        "purity": n_true / max(n_sel, 1),
        "target_purity": n_tsel / max(n_sel, 1),
        "edges_per_event": n_sel / n_ev,
        "nodes_per_event": sum(g.n_nodes for g in graphs) / n_ev,
        "target_truth_edges": n_target,
        "target_truth_edges_found": n_found,
        "selected_edges": n_sel,
        "selected_true_edges": n_true,
        "events": len(graphs),
    }


def distance_key(x: np.ndarray) -> np.ndarray:
    """Distance of each hit from the origin (from the scaled r and z features)."""
    return np.hypot(x[:, 0].astype(np.float64), x[:, 2].astype(np.float64))


def compact(x: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the nodes without edges (they do not change any edge's score).

    Returns:
        ``(x of the kept nodes, edge_index renumbered)``, same edge order.
    """
    import torch

    if edge_index.shape[1] == 0:
        return x[:0], edge_index
    # A mask and a cumulative sum instead of torch.unique (a sort of 2E values).
    used = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    used[edge_index.reshape(-1)] = True
    new_id = torch.cumsum(used, 0) - 1
    return x[used], new_id[edge_index]
