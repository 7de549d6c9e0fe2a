"""Graph quality on graph files: edge efficiency and purity of any stage's graphs (at a
score cut when the graphs are scored), and the share of target truth edges a graph holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lhcml.gnn.features import (
    EventGraph,
    graph_metrics,
    truth_edges_found,
)
from lhcml.gnn.files import (
    list_graphs,
    load_graph,
)
from lhcml.io.atomic import write_json_atomic


def evaluate_graphs(
    graphs: str | Path, *, threshold: float | None = None, out: str | Path | None = None
) -> dict[str, Any]:
    """Edge efficiency, purity and edges per event of a graph folder.

    With ``threshold``, only edges scoring at least that count as selected.
    """
    gs = [load_graph(f) for f in list_graphs(graphs)]
    mask = None
    if threshold is not None:
        mask = [np.ones(g.n_edges, bool) if g.scores is None else g.scores >= threshold for g in gs]
    result = graph_metrics(gs, mask)
    result["threshold"] = threshold
    if out is not None:
        write_json_atomic(out, result)
    return result


def graph_target_found(graph: EventGraph) -> float:
    """Share of target truth edges in the graph (one event)."""
    assert graph.truth_edge_index is not None and graph.truth_target is not None
    found = truth_edges_found(graph.edge_index, graph.truth_edge_index, graph.n_nodes)
    return float((found & graph.truth_target).sum() / max(graph.truth_target.sum(), 1))


def module_map_coverage(
    event: Any,
    module_map: Any,
    *,
    centres: Any = None,
    detectors: Any = None,
    fiducial: Any = None,
) -> dict[str, int]:
    """How much of one event a module map can see: its hits in known modules, and the
    truth edges of the fiducial particles whose module pair is in the map (an edge outside
    the map is lost before any classifier).

    Args:
        event: an :class:`~lhcml.data.Event` with truth and particles.
        module_map: a fitted :class:`~lhcml.gnn.graph_construction.module_map.ModuleMap`.
        centres: the map's module centres, to translate a TrackML event's module numbers
            with ``detectors``.
        detectors: the event's detector table (TrackML), or ``None`` (ACTS numbering).
        fiducial: the particles whose truth edges count (default: the chain's target).

    Returns:
        ``hits``, ``unknown_hits``, ``truth_edges`` and ``truth_edges_outside``.
    """
    from lhcml.gnn.features import DEFAULT_TARGET, target_particles, truth_edges
    from lhcml.gnn.graph_construction.module_map import translate_modules

    hits = event.hits
    if detectors is not None:
        hits = translate_modules(hits, detectors, centres)
    edges, pid = truth_edges(event)
    edges = edges[:, np.isin(pid, target_particles(event, fiducial or DEFAULT_TARGET))]
    known = module_map.known_pairs(hits, edges)
    return {
        "hits": len(hits),
        "unknown_hits": int((~module_map.known_hits(hits)).sum()),
        "truth_edges": int(edges.shape[1]),
        "truth_edges_outside": int((~known).sum()),
    }
