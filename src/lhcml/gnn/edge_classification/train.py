"""Training the edge filter and the Interaction Network on graph files (thin Lightning
wrappers of :mod:`lhcml.gnn.lightning`), warm starts from earlier weights
(:func:`init_weights`), and the filter's cut (:func:`choose_threshold`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import ConfigError, InputError
from lhcml.gnn.config import build, section
from lhcml.gnn.edge_classification.infer import edge_scores
from lhcml.gnn.features import (
    graph_metrics,
)
from lhcml.gnn.files import (
    list_graphs,
    load_graph,
    load_model,
    save_model,
)
from lhcml.gnn.runtime import lightning_quiet, make_trainer


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
    model = build(model_cls, model_cfg, f"{kind}.model")
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
    module = build(module_cls, section(config, "training"), f"{kind}.training", model=model)
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
    scores = [edge_scores("edge_filter", model, g, "cpu") for g in gs]
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
        mask = [edge_scores("edge_classifier", model, g, "cpu") >= threshold for g in gs]
        out["val"] = graph_metrics(gs, mask)
    return out
