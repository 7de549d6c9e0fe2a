"""The GNN chain's stages as train / infer / evaluate steps that exchange files.

Every stage reads its input from disk and writes its output to disk, so any stage can be
rerun alone (``lhcml gnn <stage> train|infer|evaluate``):

| stage | train writes | infer reads -> writes |
| --- | --- | --- |
| module map | ``module_map.parquet`` (+ ``module_centres.parquet``) | events -> graphs |
| metric learning | ``metric_learning.pt`` | events -> graphs |
| edge filter | ``edge_filter.pt`` | graphs -> smaller graphs (with filter scores) |
| edge classifier | ``edge_classifier.pt`` | graphs -> graphs with GNN scores |
| track building | (no training) | scored graphs -> ``event*-submission.csv`` |

Graphs are one file per event, ``event000000042-graph.pt``: a dict of tensors
(:meth:`lhcml.gnn.features.EventGraph.to_dict`) written atomically with ``torch.save`` and
read with ``torch.load(..., weights_only=True)``. Model files are dicts with the class
name, its ``__init__`` arguments, the ``state_dict`` and stage settings (thresholds).
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.errors import ConfigError, InputError
from lhcml.gnn.features import (
    DEFAULT_TARGET,
    EventGraph,
    event_nodes,
    graph_metrics,
    truth_edges_found,
)
from lhcml.io.atomic import write_atomic, write_json_atomic
from lhcml.metrics.tracking import FiducialSelection

_GRAPH_RE = re.compile(r"^event(\d+)-graph\.pt$")

# -- files --------------------------------------------------------------------------------


def graph_path(directory: str | Path, event_id: int) -> Path:
    """``directory/event000000042-graph.pt``."""
    return Path(directory) / f"event{event_id:09d}-graph.pt"


def save_graph(graph: EventGraph, directory: str | Path) -> Path:
    """Write one event graph atomically."""
    import torch

    d = graph.to_dict()
    return write_atomic(graph_path(directory, graph.event_id), lambda p: torch.save(d, p))


def load_graph(path: str | Path) -> EventGraph:
    """Read one event graph (``weights_only=True``).

    Raises:
        InputError: missing or unreadable file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError("graph file not found", path=path)
    try:
        return EventGraph.from_dict(torch.load(path, weights_only=True))
    except Exception as e:
        raise InputError(f"not a graph file: {str(e).splitlines()[0]}", path=path) from e


def list_graphs(directory: str | Path) -> list[Path]:
    """Graph files of a directory, by event id.

    Raises:
        InputError: the directory does not exist or holds no graph.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("graph directory not found", path=directory)
    files = sorted(
        (int(m.group(1)), f) for f in directory.iterdir() if (m := _GRAPH_RE.match(f.name))
    )
    if not files:
        raise InputError("no event*-graph.pt files in this directory", path=directory)
    return [f for _, f in files]


def event_sources(
    events: str | Path, event_ids: Sequence[int] | None = None
) -> list[tuple[Path, int]]:
    """``(directory or prefix, event_id)`` of each event of a directory or one prefix."""
    from lhcml.io import list_events, resolve_prefix

    events = Path(events)
    if events.is_dir():
        ids = list(event_ids) if event_ids else list_events(events)
        if not ids:
            raise InputError("no events in this directory", path=events)
        return [(events, eid) for eid in ids]
    prefix, eid = resolve_prefix(events)
    return [(prefix, eid)]


def read_graph_event(source: Path, event_id: int, *, truth: bool = True) -> Any:
    """Read the tables the chain needs (hits, cells if any; truth and particles if any)."""
    from lhcml.io import read_event

    eid = event_id if source.is_dir() else None
    event = read_event(source, eid)
    if not truth:
        event.truth = event.particles = None
    return event


def find_detectors(source: Path) -> Path | None:
    """A TrackML ``detectors.csv(.gz)`` beside an event (its directory), if any."""
    directory = source if source.is_dir() else source.parent
    for name in ("detectors.csv", "detectors.csv.gz", "detectors.parquet"):
        if (directory / name).is_file():
            return directory / name
    return None


def save_model(path: str | Path, model: Any, config: dict[str, Any], **extra: Any) -> Path:
    """Write a model file: class name, ``__init__`` args, weights and stage settings."""
    import torch

    blob = {
        "class": type(model).__name__,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    return write_atomic(path, lambda p: torch.save(blob, p))


def load_model(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Read a model file written by :func:`save_model`.

    Returns:
        ``(model in eval mode on device, the whole blob)``.

    Raises:
        InputError: missing or unreadable file, unknown class.
    """
    import torch

    from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
    from lhcml.gnn.edge_filter import EdgeFilter
    from lhcml.gnn.graph_construction.metric_learning import MetricLearning

    classes = {c.__name__: c for c in (InteractionNetwork, EdgeFilter, MetricLearning)}
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path=path)
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
        cls = classes[blob["class"]]
        model = cls(**blob["config"])
        model.load_state_dict(blob["state_dict"])
    except KeyError as e:
        raise InputError(f"not an lhcml GNN model file (missing {e})", path=path) from e
    except Exception as e:
        raise InputError(f"cannot read model: {str(e).splitlines()[0]}", path=path) from e
    return model.to(device).eval(), blob


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML config (``yaml.safe_load``); ``{}`` for ``None``.

    Raises:
        ConfigError: missing file or not a mapping.
    """
    import yaml

    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of sections")
    return data


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A config section (``{}`` if absent).

    Raises:
        ConfigError: the section is not a mapping.
    """
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config section '{name}' must be a mapping")
    return value


def target_selection(config: dict[str, Any]) -> FiducialSelection:
    """The target particles (config section ``target``: FiducialSelection arguments)."""
    t = section(config, "target")
    try:
        return FiducialSelection(**t) if t else DEFAULT_TARGET
    except TypeError as e:
        raise ConfigError(f"target: {e}") from e


def _build(cls: type, kwargs: dict[str, Any], where: str, **fixed: Any) -> Any:
    try:
        return cls(**fixed, **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def _progress(items: Sequence[Any], label: str, progress: bool) -> Iterable[Any]:
    from rich.progress import track

    return track(items, description=label, transient=True) if progress else items


def set_threads(threads: int | None) -> None:
    """Limit torch's CPU threads (shared machines)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def lightning_quiet(progress: bool) -> Iterator[None]:
    """Silence Lightning's advice (tips, worker counts) and its own deprecation warnings
    (``LeafSpec`` in lightning 2.6 with torch 2.13), which are not ours to fix."""
    import logging

    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    if not progress:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*number of training batches.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            yield
    finally:
        logger.setLevel(level)


def make_trainer(trainer: dict[str, Any], work_dir: Path, *, progress: bool) -> Any:
    """A Lightning ``Trainer`` from the config's ``trainer`` section (its arguments).

    Defaults: CPU, one device, no checkpoints (the stage saves its model file), a CSV
    logger in ``work_dir``.
    """
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    opts: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 10,
        "enable_progress_bar": progress,
        "logger": CSVLogger(str(work_dir), name="logs"),
    }
    opts.update(trainer)
    return _build(L.Trainer, opts, "trainer")


# -- graph construction: module map ---------------------------------------------------------


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
    mm = _build(ModuleMap, params or {}, "module_map")
    sources = [s for e in events for s in event_sources(e)]
    mm.fit(
        read_graph_event(src, eid)
        for src, eid in _progress(sources, "module map: fitting", progress)
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
    for src, eid in _progress(event_sources(events, event_ids), "module map: graphs", progress):
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


# -- graph construction: metric learning ----------------------------------------------------


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
    for src, eid in _progress(event_sources(events, event_ids), "nodes", progress):
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
    model = _build(MetricLearning, model_cfg, "metric_learning.model")
    import torch

    model.fit_normalisation(torch.from_numpy(first.x))
    module = _build(
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


def metric_learning_infer(
    model_file: str | Path,
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    graph: dict[str, Any] | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed each event's hits and write the radius graph."""
    from lhcml.gnn.graph_construction.metric_learning import embed, radius_graph
    from lhcml.io import read_detectors

    model, blob = load_model(model_file)
    gcfg = {**blob.get("graph", {}), **(graph or {})}
    use_cells = model.mlp[0].in_features > 4
    files, seconds = [], []
    for src, eid in _progress(
        event_sources(events, event_ids), "metric learning: graphs", progress
    ):
        event = read_graph_event(src, eid)
        det_file = find_detectors(src) if use_cells else None
        det = read_detectors(det_file) if det_file is not None else None
        start = time.perf_counter()
        g = event_nodes(event, use_cells=use_cells, detectors=det, target=target)
        emb = embed(model, g.x)
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


def distance_key(x: np.ndarray) -> np.ndarray:
    """Distance of each hit from the origin (from the scaled r and z features)."""
    return np.hypot(x[:, 0].astype(np.float64), x[:, 2].astype(np.float64))


# -- graph evaluation (any stage) -------------------------------------------------------------


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


# -- edge filter and edge classifier ------------------------------------------------------------


def _edge_train(
    kind: str,
    train_graphs: str | Path,
    val_graphs: str | Path | None,
    out_file: str | Path,
    config: dict[str, Any],
    *,
    progress: bool,
) -> tuple[Any, dict[str, Any], float]:
    from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
    from lhcml.gnn.edge_filter import EdgeFilter
    from lhcml.gnn.lightning import EdgeClassifierModule, EdgeFilterModule, graph_loader

    model_cls, module_cls = {
        "edge_filter": (EdgeFilter, EdgeFilterModule),
        "edge_classifier": (InteractionNetwork, EdgeClassifierModule),
    }[kind]
    train_files = list_graphs(train_graphs)
    first = load_graph(train_files[0])
    if not first.has_truth:
        raise InputError("training graphs need truth labels", path=train_files[0])
    model_cfg = {"n_node_features": first.x.shape[1], **section(config, "model")}
    model = _build(model_cls, model_cfg, f"{kind}.model")
    import torch

    model.fit_normalisation(torch.from_numpy(first.x), torch.from_numpy(first.edge_index))
    if config.get("init_from"):
        init_weights(
            model,
            model_cfg,
            Path(config["init_from"]),
            f"{kind}.init_from",
            widen=config.get("init_widen"),
        )
    elif config.get("init_widen"):
        raise ConfigError(f"{kind}.init_widen needs {kind}.init_from (the network to widen)")
    module = _build(module_cls, section(config, "training"), f"{kind}.training", model=model)
    with lightning_quiet(progress):
        trainer = make_trainer(section(config, "trainer"), Path(out_file).parent, progress=progress)
    val = graph_loader(list_graphs(val_graphs), shuffle=False) if val_graphs else None
    start = time.perf_counter()
    with lightning_quiet(progress):
        trainer.fit(module, graph_loader(train_files, shuffle=True), val)
    return model.cpu().eval(), model_cfg, time.perf_counter() - start


def init_weights(
    model: Any,
    model_cfg: dict[str, Any],
    path: Path,
    key: str,
    widen: dict[str, Any] | None = None,
) -> None:
    """Start training from a model file's weights (and input standardisation).

    Args:
        widen: arguments of :func:`lhcml.gnn.edge_classification.widen.widen` (``factor``,
            ``noise``, ``seed``): the file holds an Interaction Network ``factor`` times
            narrower than the configured one, widened without changing its logits.

    Raises:
        ConfigError: (naming ``key``) missing file, or a file of another class or shape.
    """
    if not path.is_file():
        raise ConfigError(f"{key}: model file not found: {path}")
    try:
        init, blob = load_model(path)
    except InputError as e:
        raise ConfigError(f"{key}: {e}") from e
    cfg = dict(blob["config"])
    if widen is not None:
        from lhcml.gnn.edge_classification.widen import widen as widen_network

        if blob["class"] != "InteractionNetwork" or not isinstance(widen, dict):
            raise ConfigError(
                f"{key}: init_widen (a mapping of factor, noise, seed) applies to an "
                f"InteractionNetwork file; {path} holds a {blob['class']}"
            )
        unknown = sorted(set(widen) - {"factor", "noise", "seed"})
        if unknown:
            raise ConfigError(
                f"{key}: init_widen: unknown key(s) {unknown}; known: factor, noise, seed"
            )
        init = widen_network(init, **widen)
        cfg["hidden"] = init.node_encoder[0].out_features
    if blob["class"] != type(model).__name__ or cfg != model_cfg:
        raise ConfigError(
            f"{key}: {path} holds a {blob['class']} {cfg}, "
            f"not the configured {type(model).__name__} {model_cfg}"
        )
    model.load_state_dict(init.state_dict())


def _scores(kind: str, model: Any, graph: EventGraph, device: str) -> np.ndarray:
    """Edge scores of one graph (no gradient; the filter in batches of edges)."""
    import torch

    from lhcml.gnn.lightning import compact

    x = torch.from_numpy(graph.x).to(device)
    ei = torch.from_numpy(graph.edge_index).to(device)
    with torch.no_grad():
        if kind == "edge_filter":
            s = model.scores(x, ei)
        else:
            s = torch.sigmoid(model(*compact(x, ei))) if ei.shape[1] else torch.zeros(0)
    return s.float().cpu().numpy()


def choose_threshold(
    scores: Sequence[np.ndarray], target: Sequence[np.ndarray], keep: float
) -> float:
    """Largest cut keeping at least ``keep`` of the target edges present in the graphs."""
    t = np.concatenate([s[m] for s, m in zip(scores, target, strict=True)])
    if len(t) == 0:
        return 0.0
    return float(np.quantile(t, 1.0 - keep, method="lower"))


def edge_filter_train(
    train_graphs: str | Path,
    val_graphs: str | Path,
    out_file: str | Path,
    config: dict[str, Any],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the edge filter; its cut keeps ``config['keep_efficiency']`` (default 0.995)
    of the validation target edges. Writes the model file with the cut."""
    model, model_cfg, seconds = _edge_train(
        "edge_filter", train_graphs, val_graphs, out_file, config, progress=progress
    )
    keep = float(config.get("keep_efficiency", 0.995))
    gs = [load_graph(f) for f in list_graphs(val_graphs)]
    scores = [_scores("edge_filter", model, g, "cpu") for g in gs]
    threshold = choose_threshold(scores, [g.target for g in gs], keep)  # type: ignore[misc]
    save_model(out_file, model, model_cfg, threshold=threshold, keep_efficiency=keep)
    mask = [s >= threshold for s in scores]
    return {"seconds": seconds, "threshold": threshold, "val": graph_metrics(gs, mask)}


def edge_classifier_train(
    train_graphs: str | Path,
    val_graphs: str | Path | None,
    out_file: str | Path,
    config: dict[str, Any],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the Interaction Network; writes the model file (cut ``config['threshold']``,
    default 0.5, used by track building)."""
    model, model_cfg, seconds = _edge_train(
        "edge_classifier", train_graphs, val_graphs, out_file, config, progress=progress
    )
    threshold = float(config.get("threshold", 0.5))
    save_model(out_file, model, model_cfg, threshold=threshold)
    out: dict[str, Any] = {"seconds": seconds, "threshold": threshold}
    if val_graphs:
        gs = [load_graph(f) for f in list_graphs(val_graphs)]
        mask = [_scores("edge_classifier", model, g, "cpu") >= threshold for g in gs]
        out["val"] = graph_metrics(gs, mask)
    return out


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
    for f in _progress(list_graphs(graphs), kind.replace("_", " "), progress):
        g = load_graph(f)
        start = time.perf_counter()
        g.scores = _scores(kind, model, g, device)
        if kind == "edge_filter":
            g = g.subgraph(g.scores >= cut)
        seconds.append(time.perf_counter() - start)
        files.append(save_graph(g, out_dir))
    return {
        "seconds_per_event": float(np.mean(seconds)),
        "threshold": cut,
        "files": [str(f) for f in files],
    }


def edge_classifier_evaluate(
    graphs: str | Path,
    out_dir: str | Path | None = None,
    *,
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    plots: bool = True,
) -> dict[str, Any]:
    """Edge efficiency and purity versus the score cut, and the ROC curve.

    Efficiencies are over all target truth edges of the events (so edges lost in graph
    construction and filtering count as lost); ``stage_efficiency`` over the target edges
    present in the scored graphs. The ROC separates target edges from false edges (true
    edges of non-target particles left out), with its area (AUC).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    gs = [load_graph(f) for f in list_graphs(graphs)]
    if any(g.scores is None or not g.has_truth for g in gs):
        raise InputError("evaluation needs scored graphs with truth", path=graphs)
    rows = []
    for t in thresholds:
        m = graph_metrics(gs, [g.scores >= t for g in gs])  # type: ignore[operator]
        present = sum(int(g.target.sum()) for g in gs)  # type: ignore[union-attr]
        kept = sum(int((g.target & (g.scores >= t)).sum()) for g in gs)  # type: ignore[operator]
        rows.append(
            {
                "threshold": t,
                "efficiency": m["efficiency"],
                "stage_efficiency": kept / max(present, 1),
                "purity": m["purity"],
                "target_purity": m["target_purity"],
                "edges_per_event": m["edges_per_event"],
            }
        )
    s = np.concatenate([g.scores for g in gs])  # type: ignore[misc]
    tgt = np.concatenate([g.target for g in gs])  # type: ignore[misc]
    fake = ~np.concatenate([g.y for g in gs])  # type: ignore[misc]
    at_purity = []
    for p in AT_PURITY:
        cut, eff, pur = efficiency_at_purity(s, ~fake, tgt, p)
        m = graph_metrics(gs, [g.scores >= cut for g in gs])  # type: ignore[operator]
        at_purity.append(
            {
                "purity_min": p,
                "threshold": cut,
                "stage_efficiency": eff,
                "efficiency": m["efficiency"],
                "purity": pur,
            }
        )
    use = tgt | fake
    label = tgt[use]
    auc = float(roc_auc_score(label, s[use])) if 0 < label.sum() < len(label) else float("nan")
    result: dict[str, Any] = {
        "events": len(gs),
        "graph": graph_metrics(gs),
        "vs_threshold": rows,
        "at_purity": at_purity,
        "roc_auc": auc,
        "files": [],
    }
    if out_dir is not None:
        out = Path(out_dir)
        if plots and 0 < label.sum() < len(label):
            fpr, tpr, _ = roc_curve(label, s[use])
            result["files"] = [str(p) for p in _edge_plots(rows, fpr, tpr, auc, out)]
        write_json_atomic(out / "edge_classifier.json", result)
    return result


#: Purities at which the edge evaluation reports the best efficiency (the issue's target
#: is 99 % efficiency at >= 90 % purity).
AT_PURITY: tuple[float, ...] = (0.90, 0.95)


def efficiency_at_purity(
    scores: np.ndarray, y: np.ndarray, target: np.ndarray, purity: float
) -> tuple[float, float, float]:
    """The loosest score cut whose selection has at least ``purity``.

    Args:
        scores: ``(E,)`` edge scores; y: ``(E,)`` true edges; target: ``(E,)`` target edges.
        purity: minimum share of true edges among the selected ones.

    Returns:
        ``(cut, target efficiency, purity)`` of the selection ``scores >= cut``
        (``(inf, 0, nan)`` if no cut reaches the purity).
    """
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    n_sel = np.arange(1, len(s) + 1)
    pur = np.cumsum(y[order]) / n_sel
    eff = np.cumsum(target[order]) / max(int(target.sum()), 1)
    # A cut keeps all edges of equal score: only the last of a run of ties is a selection.
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)
    ok = np.flatnonzero(last & (pur >= purity))
    if len(ok) == 0:
        return float("inf"), 0.0, float("nan")
    i = ok[-1]
    return float(s[i]), float(eff[i]), float(pur[i])


def _edge_plots(
    rows: list[dict[str, Any]], fpr: np.ndarray, tpr: np.ndarray, auc: float, out: Path
) -> list[Path]:
    from lhcml.metrics.plots import _figure, _style, save_png

    files = []
    with _style():
        fig, ax = _figure()
        ax.plot(fpr, tpr, label=f"Interaction Network (AUC = {auc:.4f})")
        ax.set_xscale("log")
        ax.set_xlim(1e-5, 1)
        ax.set_xlabel("false edge rate")
        ax.set_ylabel("target edge efficiency")
        ax.legend(loc="lower right")
        files.append(save_png(fig, out / "roc.png"))
        fig, ax = _figure()
        t = [r["threshold"] for r in rows]
        ax.plot(t, [r["efficiency"] for r in rows], "o-", label="efficiency (all target edges)")
        ax.plot(t, [r["stage_efficiency"] for r in rows], "s--", label="efficiency (in graph)")
        ax.plot(t, [r["purity"] for r in rows], "^-", label="purity")
        ax.set_xlabel("edge score cut")
        ax.set_ylabel("fraction")
        ax.set_ylim(0.5, 1.01)
        ax.legend(loc="lower left")
        files.append(save_png(fig, out / "efficiency_purity_vs_threshold.png"))
    return files


# -- track building ----------------------------------------------------------------------------


def track_building_infer(
    graphs: str | Path,
    out_dir: str | Path,
    params: dict[str, Any] | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Build tracks from scored graphs; write ``event*-submission.csv`` (``-1``: no track).

    ``params`` are :func:`lhcml.gnn.track_building.build_tracks` keyword arguments.
    """
    from lhcml.gnn.track_building import build_tracks
    from lhcml.reco.submission import submission_path, write_submission

    files, seconds = [], []
    for f in _progress(list_graphs(graphs), "track building", progress):
        g = load_graph(f)
        if g.scores is None:
            raise InputError("graph has no edge scores: run the edge classifier first", path=f)
        start = time.perf_counter()
        try:
            tid = build_tracks(
                g.n_nodes, g.edge_index, g.scores, distance_key(g.x), **(params or {})
            )
        except TypeError as e:
            raise ConfigError(f"track_building: {e}") from e
        seconds.append(time.perf_counter() - start)
        table = pd.DataFrame({"hit_id": g.hit_id, "track_id": tid})
        files.append(write_submission(table, submission_path(out_dir, g.event_id)))
    return {"seconds_per_event": float(np.mean(seconds)), "files": [str(f) for f in files]}


def track_evaluate(
    events: str | Path | Sequence[Any],
    submissions: str | Path,
    out_dir: str | Path | None = None,
    *,
    event_ids: Sequence[int] | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    track_min_hits: int = 5,
    plots: bool = True,
) -> dict[str, Any]:
    """Track efficiency, fake and duplicate rates (ATLAS and double-majority matching) and
    the TrackML score, with :func:`lhcml.metrics.evaluate_events`."""
    from lhcml.metrics import TrackSelection, evaluate_events

    out: dict[str, Any] = {"fiducial": target.to_dict(), "track_min_hits": track_min_hits}
    for matching in ("atlas", "double_majority"):
        res = evaluate_events(
            events,
            submissions,
            out_dir=None if out_dir is None else Path(out_dir) / matching,
            event_ids=event_ids,
            matching=matching,  # type: ignore[arg-type]
            fiducial=target,
            track_selection=TrackSelection(min_hits=track_min_hits),
            skip_missing=event_ids is None,
            plots=plots,
        )
        perf = res.performance
        out[matching] = {
            "efficiency": perf.efficiency.to_dict(),
            "fake_rate": perf.fake_rate.to_dict(),
            "duplicate_rate": perf.duplicate_rate.to_dict(),
        }
        out["trackml_score"] = res.score_mean
        out["trackml_score_std"] = res.score_std
        out["events"] = len(res.events)
    if out_dir is not None:
        write_json_atomic(Path(out_dir) / "tracks.json", out)
    return out


def graph_target_found(graph: EventGraph) -> float:
    """Share of target truth edges in the graph (one event)."""
    assert graph.truth_edge_index is not None and graph.truth_target is not None
    found = truth_edges_found(graph.edge_index, graph.truth_edge_index, graph.n_nodes)
    return float((found & graph.truth_target).sum() / max(graph.truth_target.sum(), 1))


# -- the whole chain from one config --------------------------------------------------------

#: Files of a model set (see :mod:`lhcml.gnn.pipeline`).
MODEL_FILES: tuple[str, ...] = (
    "module_map.parquet",
    "module_centres.parquet",
    "metric_learning.pt",
    "edge_filter.pt",
    "edge_classifier.pt",
)


def simulate_samples(
    config: dict[str, Any], data_dir: Path, *, jobs: int = 1, progress: bool = True
) -> dict[str, Path]:
    """Simulate the config's ``samples`` (resuming complete events); their folders by name.

    Each sample: ``simulation`` (:class:`lhcml.simulation.SimulationConfig` fields),
    ``events`` and ``first_event``.
    """
    from lhcml.simulation import SimulationConfig, simulate_events

    dirs = {}
    for name, spec in section(config, "samples").items():
        if not isinstance(spec, dict):
            raise ConfigError(f"samples.{name} must be a mapping")
        sim = SimulationConfig.from_dict(spec.get("simulation") or {})
        out = data_dir / name
        events = int(spec.get("events", 1))
        first = int(spec.get("first_event", 0))
        simulate_events(sim, out, events=events, first_event=first, jobs=jobs)
        dirs[name] = out
    return dirs


def _done(path: Path, resume: bool) -> bool:
    return resume and path.is_file()


def train_chain(
    config: dict[str, Any],
    work_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    export: str | Path | None = None,
    jobs: int = 1,
    resume: bool = True,
    progress: bool = True,
    until: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Simulate, train, infer and evaluate every stage of a chain config; export the set.

    Config sections: ``samples`` (simulated event samples), ``splits`` (which samples are
    ``train``, ``val``, ``test`` and ``module_map`` fit samples), ``target``,
    ``module_map`` (``params``: :class:`ModuleMap` args), ``metric_learning``,
    ``edge_filter``, ``edge_classifier`` (``model``/``training``/``trainer``),
    ``track_building`` (:func:`build_tracks` args), ``real_events`` (event prefixes
    evaluated without tuning).

    Every step writes a JSON summary into ``work_dir``; with ``resume`` a step whose
    summary exists is skipped, so an interrupted run continues. ``until`` stops after a
    stage (``module_map``, ``metric_learning``, ``edge_filter``, ``edge_classifier``).

    Returns:
        The metrics written to ``metrics.json``.
    """
    import json
    import shutil

    import yaml

    if until not in (None, "module_map", "metric_learning", "edge_filter", "edge_classifier"):
        raise ConfigError(f"--until: unknown stage '{until}'")
    work = Path(work_dir)
    data = Path(data_dir) if data_dir is not None else work / "events"
    work.mkdir(parents=True, exist_ok=True)
    target = target_selection(config)
    splits = section(config, "splits")
    samples = simulate_samples(config, data, jobs=jobs, progress=progress)

    def sample(name: str) -> Path:
        if name not in samples:
            raise ConfigError(f"splits: sample '{name}' is not in samples")
        return samples[name]

    train, val, test = (sample(splits[k]) for k in ("train", "val", "test"))
    named = {"train": train, "val": val, "test": test}
    metrics: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        out = work / f"{name}.json"
        if _done(out, resume):
            log(f"{name}: done before, skipped")
            return json.loads(out.read_text())
        log(f"{name} ...")
        result = fn()
        result.pop("files", None)
        write_json_atomic(out, result)
        return result

    # 1. Module map.
    mm_dir = work / "module_map"
    mm_cfg = section(config, "module_map")
    fit_samples = [sample(s) for s in mm_cfg.get("fit_samples", [splits["train"]])]
    metrics["module_map_train"] = step(
        "module_map_train",
        lambda: module_map_train(fit_samples, mm_dir, mm_cfg.get("params"), progress=progress),
    )
    for split, src in named.items():
        step(
            f"module_map_infer_{split}",
            lambda src=src, split=split: module_map_infer(
                mm_dir, src, mm_dir / "graphs" / split, target=target, progress=progress
            ),
        )
    metrics["module_map"] = step(
        "module_map_evaluate", lambda: evaluate_graphs(mm_dir / "graphs" / "test")
    )

    if until == "module_map":
        return metrics

    # 2. Metric learning (the alternative graph builder).
    ml_cfg = section(config, "metric_learning")
    ml_dir = work / "metric_learning"
    if ml_cfg.get("enabled", True):
        for split in ("train", "val", "test"):
            ids = ml_cfg.get(f"{split}_events")
            step(
                f"metric_learning_nodes_{split}",
                lambda split=split, ids=ids: {
                    "files": write_node_graphs(
                        named[split],
                        ml_dir / "nodes" / split,
                        event_ids=_ids(named[split], ids),
                        target=target,
                        progress=progress,
                    )
                },
            )
        metrics["metric_learning_train"] = step(
            "metric_learning_train",
            lambda: metric_learning_train(
                ml_dir / "nodes" / "train",
                ml_dir / "nodes" / "val",
                ml_dir / "metric_learning.pt",
                ml_cfg,
                progress=progress,
            ),
        )
        ids = ml_cfg.get("test_events")
        infer = step(
            "metric_learning_infer_test",
            lambda: metric_learning_infer(
                ml_dir / "metric_learning.pt",
                test,
                ml_dir / "graphs" / "test",
                event_ids=_ids(test, ids),
                target=target,
                progress=progress,
            ),
        )
        metrics["metric_learning"] = step(
            "metric_learning_evaluate", lambda: evaluate_graphs(ml_dir / "graphs" / "test")
        )
        metrics["metric_learning"]["seconds_per_event"] = infer["seconds_per_event"]

    if until == "metric_learning":
        return metrics

    # 3. Edge filter (trained and evaluated; the GNN reads its graphs if ``use``).
    ef_cfg = section(config, "edge_filter")
    ef_dir = work / "edge_filter"
    gnn_input = mm_dir / "graphs"
    use_filter = bool(ef_cfg.get("enabled", True)) and bool(ef_cfg.get("use", True))
    if ef_cfg.get("enabled", True):
        metrics["edge_filter_train"] = step(
            "edge_filter_train",
            lambda: edge_filter_train(
                mm_dir / "graphs" / "train",
                mm_dir / "graphs" / "val",
                ef_dir / "edge_filter.pt",
                {k: v for k, v in ef_cfg.items() if k not in ("enabled", "use")},
                progress=progress,
            ),
        )
        for split in named if use_filter else ["test"]:
            step(
                f"edge_filter_infer_{split}",
                lambda split=split: edge_infer(
                    "edge_filter",
                    ef_dir / "edge_filter.pt",
                    mm_dir / "graphs" / split,
                    ef_dir / "graphs" / split,
                    progress=progress,
                ),
            )
        metrics["edge_filter"] = step(
            "edge_filter_evaluate", lambda: evaluate_graphs(ef_dir / "graphs" / "test")
        )
        if use_filter:
            gnn_input = ef_dir / "graphs"

    if until == "edge_filter":
        return metrics

    # 4. Edge classifier (Interaction Network).
    ec_cfg = section(config, "edge_classifier")
    ec_dir = work / "edge_classifier"
    metrics["edge_classifier_train"] = step(
        "edge_classifier_train",
        lambda: edge_classifier_train(
            gnn_input / "train",
            gnn_input / "val",
            ec_dir / "edge_classifier.pt",
            ec_cfg,
            progress=progress,
        ),
    )
    for split in ("val", "test"):
        step(
            f"edge_classifier_infer_{split}",
            lambda split=split: edge_infer(
                "edge_classifier",
                ec_dir / "edge_classifier.pt",
                gnn_input / split,
                ec_dir / "graphs" / split,
                progress=progress,
            ),
        )
    ec_eval = step(
        "edge_classifier_evaluate",
        lambda: edge_classifier_evaluate(ec_dir / "graphs" / "test", ec_dir / "evaluation"),
    )
    threshold = float(ec_cfg.get("threshold", 0.5))
    metrics["edge_classifier"] = {
        "threshold": threshold,
        "at_threshold": evaluate_graphs(ec_dir / "graphs" / "test", threshold=threshold),
        "vs_threshold": ec_eval["vs_threshold"],
        "at_purity": ec_eval.get("at_purity"),
        "roc_auc": ec_eval["roc_auc"],
    }

    if until == "edge_classifier":
        return metrics

    # 5. Track building (on disk), then the model set and the in-memory chain on test events.
    tb_cfg = {
        "cc_threshold": threshold,
        "walk_threshold": threshold,
        **section(config, "track_building"),
    }
    tb_dir = work / "track_building"
    step(
        "track_building_infer_test",
        lambda: track_building_infer(
            ec_dir / "graphs" / "test", tb_dir / "submissions", tb_cfg, progress=progress
        ),
    )
    metrics["tracks_test_stages"] = step(
        "track_building_evaluate_test",
        lambda: track_evaluate(test, tb_dir / "submissions", tb_dir / "evaluation", target=target),
    )

    set_dir = work / "model_set"
    set_dir.mkdir(parents=True, exist_ok=True)
    sources = {
        "module_map.parquet": mm_dir / "module_map.parquet",
        "module_centres.parquet": mm_dir / "module_centres.parquet",
        "metric_learning.pt": ml_dir / "metric_learning.pt",
        "edge_filter.pt": ef_dir / "edge_filter.pt",
        "edge_classifier.pt": ec_dir / "edge_classifier.pt",
    }
    for name, src in sources.items():
        if name == "edge_filter.pt" and not use_filter:
            (set_dir / name).unlink(missing_ok=True)
            continue
        if src.is_file():
            shutil.copyfile(src, set_dir / name)
    chain_cfg = {
        "graph_construction": "module_map",
        "module_map": section(config, "module_map").get("apply") or {},
        "edge_filter": use_filter,
        "threshold": threshold,
        "track_building": section(config, "track_building"),
        "target": target.to_dict(),
    }
    (set_dir / "chain.yaml").write_text(yaml.safe_dump(chain_cfg, sort_keys=False))
    metrics["chain_test"] = step(
        "chain_evaluate_test",
        lambda: evaluate_chain(
            set_dir, test, work / "chain" / "test", target=target, progress=progress
        ),
    )
    for i, prefix in enumerate(config.get("real_events") or []):
        if Path(f"{prefix}-hits.csv.gz").is_file() or Path(f"{prefix}-hits.csv").is_file():
            metrics[f"chain_real_{i}"] = step(
                f"chain_evaluate_real_{i}",
                lambda prefix=prefix, i=i: evaluate_chain(
                    set_dir, prefix, work / "chain" / f"real_{i}", target=target, progress=progress
                ),
            )
    metrics["config"] = config
    write_json_atomic(set_dir / "metrics.json", metrics)
    if export is not None:
        out = Path(export)
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(set_dir.iterdir()):
            if f.is_file():
                shutil.copyfile(f, out / f.name)
    return metrics


def _ids(directory: Path, count: int | None) -> list[int] | None:
    """The first ``count`` events of a directory (``None``: all)."""
    from lhcml.io import list_events

    return None if count is None else list_events(directory)[: int(count)]


def evaluate_chain(
    model_dir: str | Path,
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the in-memory chain (:class:`lhcml.gnn.pipeline.GNNChain`) on events with truth,
    write submissions and evaluate them; with the time of each stage per event."""
    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import read_detectors
    from lhcml.reco.submission import submission_path, write_submission

    chain = GNNChain(model_dir, device=device)
    out = Path(out_dir)
    timings: list[dict[str, float]] = []
    edges: list[dict[str, int]] = []
    ids = []
    for src, eid in _progress(event_sources(events, event_ids), "chain", progress):
        event = read_graph_event(src, eid)
        det_file = find_detectors(src)
        det = read_detectors(det_file) if det_file is not None else None
        res = chain.reconstruct(event, detectors=det)
        timings.append(res.timings)
        edges.append(res.n_edges)
        ids.append(event.event_id)
        write_submission(res.tracks, submission_path(out / "submissions", event.event_id))
    result = track_evaluate(
        events, out / "submissions", out / "evaluation", event_ids=ids, target=target
    )
    keys = timings[0].keys()
    result["seconds_per_event"] = {k: float(np.mean([t[k] for t in timings])) for k in keys}
    result["seconds_per_event"]["total"] = float(np.mean([sum(t.values()) for t in timings]))
    result["edges_per_event"] = {k: float(np.mean([e[k] for e in edges])) for k in edges[0]}
    return result
