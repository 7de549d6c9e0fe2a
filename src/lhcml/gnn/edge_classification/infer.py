"""Edge scores on graph files: the edge filter (which also drops the edges below its cut)
and the Interaction Network write graphs with ``scores``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.gnn.features import (
    EventGraph,
)
from lhcml.gnn.files import (
    list_graphs,
    load_graph,
    load_model,
    save_graph,
)
from lhcml.gnn.runtime import track_progress


def edge_scores(kind: str, model: Any, graph: EventGraph, device: str) -> np.ndarray:
    """Edge scores of one graph (no gradient; the filter in batches of edges)."""
    import torch

    from lhcml.gnn.features import compact

    x = torch.from_numpy(graph.x).to(device)
    ei = torch.from_numpy(graph.edge_index).to(device)
    with torch.no_grad():
        if kind == "edge_filter":
            s = model.scores(x, ei)
        else:
            s = torch.sigmoid(model(*compact(x, ei))) if ei.shape[1] else torch.zeros(0)
    return s.float().cpu().numpy()


def edge_infer(
    kind: str,
    model_file: str | Path,
    graphs: str | Path,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    threshold: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every graph with the filter or the classifier and write the results.

    The filter drops edges below its cut (``threshold`` overrides the model's); the
    classifier keeps all edges and stores the scores.
    """
    model, blob = load_model(model_file, device)
    cut = float(blob.get("threshold", 0.0)) if threshold is None else threshold
    files, seconds = [], []
    for f in track_progress(list_graphs(graphs), kind.replace("_", " "), progress):
        g = load_graph(f)
        start = time.perf_counter()
        g.scores = edge_scores(kind, model, g, device)
        if kind == "edge_filter":
            g = g.subgraph(g.scores >= cut)
        seconds.append(time.perf_counter() - start)
        files.append(save_graph(g, out_dir))
    return {
        "seconds_per_event": float(np.mean(seconds)),
        "threshold": cut,
        "files": [str(f) for f in files],
    }
