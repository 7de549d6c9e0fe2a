"""Training the graph builders on event files: the module map (``module_map.parquet`` +
``module_centres.parquet``) and the metric-learning embedding (``metric_learning.pt``,
trained on node-only graphs written by :func:`write_node_graphs`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lhcml.gnn.config import build, section
from lhcml.gnn.features import (
    DEFAULT_TARGET,
    event_nodes,
)
from lhcml.gnn.files import (
    event_sources,
    find_detectors,
    list_graphs,
    load_graph,
    read_graph_event,
    save_graph,
    save_model,
)
from lhcml.gnn.runtime import lightning_quiet, make_trainer, track_progress
from lhcml.io.atomic import write_atomic
from lhcml.metrics.tracking import FiducialSelection


def module_map_train(
    events: Sequence[str | Path],
    out_dir: str | Path,
    params: dict[str, Any] | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Learn a module map from the events of one or more directories.

    Writes ``out_dir/module_map.parquet`` and ``out_dir/module_centres.parquet`` (the
    Generic detector's module centres, to translate other numberings).

    Returns:
        Summary: module pairs, events used, seconds.
    """
    from lhcml.gnn.graph_construction.module_map import ModuleMap, generic_module_centres

    start = time.perf_counter()
    mm = build(ModuleMap, params or {}, "module_map")
    sources = [s for e in events for s in event_sources(e)]
    mm.fit(
        read_graph_event(src, eid)
        for src, eid in track_progress(sources, "module map: fitting", progress)
    )
    out = Path(out_dir)
    mm.save(out / "module_map.parquet")
    centres = generic_module_centres()
    write_atomic(out / "module_centres.parquet", lambda p: centres.to_parquet(p, index=False))
    assert mm.table is not None
    return {
        "module_pairs": len(mm.table),
        "events": mm.n_events,
        "seconds": time.perf_counter() - start,
    }


def module_map_extend(
    model_dir: str | Path,
    events: Sequence[str | Path],
    selection: dict[str, Any],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Widen the map in ``model_dir`` to more particles (:meth:`ModuleMap.extend`),
    rewriting its ``module_map.parquet``.

    Returns:
        Summary: module pairs before and after, events added, seconds.
    """
    from lhcml.gnn.graph_construction.module_map import ModuleMap

    start = time.perf_counter()
    path = Path(model_dir) / "module_map.parquet"
    mm = ModuleMap.load(path)
    assert mm.table is not None
    before, n_before = len(mm.table), mm.n_events
    sources = [s for e in events for s in event_sources(e)]
    mm.extend(
        (
            read_graph_event(src, eid)
            for src, eid in track_progress(sources, "module map: extending", progress)
        ),
        **selection,
    )
    mm.save(path)
    return {
        "module_pairs_before": before,
        "module_pairs": len(mm.table),
        "events": mm.n_events - n_before,
        "selection": selection,
        "seconds": time.perf_counter() - start,
    }


def write_node_graphs(
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    use_cells: bool = False,
    target: FiducialSelection = DEFAULT_TARGET,
    progress: bool = True,
) -> list[Path]:
    """Nodes and truth (no edges) of each event, as graph files (metric-learning input)."""
    from lhcml.io import read_detectors

    files = []
    for src, eid in track_progress(event_sources(events, event_ids), "nodes", progress):
        event = read_graph_event(src, eid)
        det_file = find_detectors(src) if use_cells else None
        det = read_detectors(det_file) if det_file is not None else None
        files.append(
            save_graph(
                event_nodes(event, use_cells=use_cells, detectors=det, target=target), out_dir
            )
        )
    return files


def metric_learning_train(
    train_graphs: str | Path,
    val_graphs: str | Path | None,
    out_file: str | Path,
    config: dict[str, Any],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the embedding on node graphs (:func:`write_node_graphs`).

    ``config`` is the ``metric_learning`` section: ``model`` (MetricLearning args),
    ``training`` (MetricLearningModule args), ``trainer`` (Trainer args), ``graph``
    (``r``, ``k_max``, ``index`` of the inference radius graph).
    """
    from lhcml.gnn.graph_construction.metric_learning import MetricLearning
    from lhcml.gnn.lightning import MetricLearningModule, graph_loader

    train_files = list_graphs(train_graphs)
    first = load_graph(train_files[0])
    model_cfg = {"n_node_features": first.x.shape[1], **section(config, "model")}
    model = build(MetricLearning, model_cfg, "metric_learning.model")
    import torch

    model.fit_normalisation(torch.from_numpy(first.x))
    module = build(
        MetricLearningModule, section(config, "training"), "metric_learning.training", model=model
    )
    out_file = Path(out_file)
    with lightning_quiet(progress):
        trainer = make_trainer(section(config, "trainer"), out_file.parent, progress=progress)
    start = time.perf_counter()
    val = graph_loader(list_graphs(val_graphs), shuffle=False) if val_graphs else None
    with lightning_quiet(progress):
        trainer.fit(module, graph_loader(train_files, shuffle=True), val)
    seconds = time.perf_counter() - start
    graph_cfg = {"r": module.margin, "k_max": 50, "index": "ivf", **section(config, "graph")}
    save_model(out_file, model, model_cfg, graph=graph_cfg)
    return {
        "seconds": seconds,
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
    }
