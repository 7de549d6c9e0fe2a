"""Graph construction on event files: events -> ``event*-graph.pt`` with the module map
(TrackML module ids translated to the ACTS Generic detector's when a ``detectors.csv`` is
beside the events) or the metric-learning embedding + faiss radius graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.gnn.features import (
    DEFAULT_TARGET,
    distance_key,
    event_nodes,
)
from lhcml.gnn.files import (
    event_sources,
    find_detectors,
    load_model,
    read_graph_event,
    save_graph,
)
from lhcml.gnn.runtime import track_progress
from lhcml.metrics.tracking import FiducialSelection


def _detector_translation(model_dir: Path, detectors: Path | None) -> Callable[[Any], Any]:
    """A function renumbering an event's hits into the map's module numbering."""
    if detectors is None:
        return lambda hits: hits
    from lhcml.gnn.graph_construction.module_map import translate_modules
    from lhcml.io import read_detectors

    det = read_detectors(detectors)
    ref = pd.read_parquet(model_dir / "module_centres.parquet")
    return lambda hits: translate_modules(hits, det, ref)


def module_map_infer(
    model_dir: str | Path,
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    detectors: str | Path | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the module-map graph of each event and write it.

    Args:
        model_dir: folder with ``module_map.parquet``.
        events: event directory or prefix.
        out_dir: folder for the graph files.
        event_ids: subset of the directory's events.
        detectors: detector file of events in another module numbering (TrackML); by
            default a ``detectors.csv(.gz)`` beside TrackML-format events is used.
        target: target particles (truth labels).
        overrides: module-map settings to change (e.g. pads).

    Returns:
        ``seconds_per_event`` and the files.
    """
    from lhcml.gnn.graph_construction.module_map import ModuleMap

    model_dir = Path(model_dir)
    mm = ModuleMap.load(model_dir / "module_map.parquet", **(overrides or {}))
    files, seconds = [], []
    for src, eid in track_progress(
        event_sources(events, event_ids), "module map: graphs", progress
    ):
        event = read_graph_event(src, eid)
        det = Path(detectors) if detectors else _auto_detectors(src, event)
        translate = _detector_translation(model_dir, det)
        start = time.perf_counter()
        graph = event_nodes(event, target=target)
        graph.edge_index = mm.build_edges(translate(event.hits))
        seconds.append(time.perf_counter() - start)
        graph.relabel()
        files.append(save_graph(graph, out_dir))
    return {"seconds_per_event": float(np.mean(seconds)), "files": [str(f) for f in files]}


def _auto_detectors(source: Path, event: Any) -> Path | None:
    """The detector file beside an event, which then describes its module numbering."""
    return find_detectors(source)


def metric_learning_infer(
    model_file: str | Path,
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    graph: dict[str, Any] | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Embed each event's hits (the model on ``device``) and write the radius graph."""
    from lhcml.gnn.graph_construction.metric_learning import embed, radius_graph
    from lhcml.io import read_detectors

    model, blob = load_model(model_file, device)
    gcfg = {**blob.get("graph", {}), **(graph or {})}
    use_cells = model.mlp[0].in_features > 4
    files, seconds = [], []
    for src, eid in track_progress(
        event_sources(events, event_ids), "metric learning: graphs", progress
    ):
        event = read_graph_event(src, eid)
        det_file = find_detectors(src) if use_cells else None
        det = read_detectors(det_file) if det_file is not None else None
        start = time.perf_counter()
        g = event_nodes(event, use_cells=use_cells, detectors=det, target=target)
        emb = embed(model, g.x, device=device)
        g.edge_index = radius_graph(
            emb,
            float(gcfg["r"]),
            int(gcfg["k_max"]),
            distance_key(g.x),
            index=gcfg.get("index", "ivf"),
        )
        seconds.append(time.perf_counter() - start)
        g.relabel()
        files.append(save_graph(g, out_dir))
    return {"seconds_per_event": float(np.mean(seconds)), "files": [str(f) for f in files]}
