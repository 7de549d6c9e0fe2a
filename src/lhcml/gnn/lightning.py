"""Thin Lightning modules that train the GNN chain's pure ``nn.Module``s.

One event graph is one batch (graphs of a mu = 200 event have 10^5 - 10^6 edges). The
datasets read the per-event graph files of a stage's output folder
(:func:`lhcml.gnn.files.save_graph`); Lightning adds a distributed sampler under DDP, so
``devices=N, strategy="ddp"`` spreads events over GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lhcml.errors import ConfigError
from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
from lhcml.gnn.edge_filter import EdgeFilter
from lhcml.gnn.features import EventGraph, compact
from lhcml.gnn.graph_construction.metric_learning import (
    MetricLearning,
    hinge_loss,
    training_pairs,
)


class GraphFiles(Dataset):
    """Event graphs stored one per file (``torch.load(..., weights_only=True)``)."""

    def __init__(self, files: Sequence[str | Path]) -> None:
        self.files = [Path(f) for f in files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return torch.load(self.files[i], weights_only=True)


def graph_loader(files: Sequence[str | Path], *, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A loader yielding one graph (a dict of tensors) per batch."""
    return DataLoader(
        GraphFiles(files),
        batch_size=1,
        shuffle=shuffle,
        collate_fn=_only_graph,
        num_workers=num_workers,
    )


def _only_graph(batch: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    # A module-level function, not a lambda: DDP spawn pickles the loaders.
    return batch[0]


#: Per-edge arrays that follow the edges when a training step takes a subset of them.
EDGE_KEYS: tuple[str, ...] = ("y", "target", "edge_pt", "edge_vz")
#: Per-node truth arrays, not passed on to a step's compacted subgraph.
NODE_TRUTH_KEYS: tuple[str, ...] = ("particle_id", "particle_pt", "particle_vz")


def edge_weights(
    graph: dict[str, Tensor],
    pos_weight: float,
    nontarget_weight: float = 0.0,
    pt_weight: float = 0.0,
    vz_weight: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Labels and weights of the weighted BCE: target edges ``pos_weight``, false edges 1,
    true edges of non-target particles ``nontarget_weight`` (0: left out of the loss).

    With ``pt_weight`` > 0 a target edge weighs ``pos_weight * (1 + pt_weight * ln(pT / 1
    GeV))`` (``graph["edge_pt"]``, pT of the edge's particle, floored at 1 GeV): high-pT
    particles are rare, so an unweighted loss lets the network learn "straight doublets are
    usually fake" and lose them. With ``vz_weight`` > 0 it is also multiplied by ``1 +
    vz_weight * min((vz / 100 mm)^2, 4)`` (``graph["edge_vz"]``, the particle's vertex z):
    otherwise the network learns the beam-spot shape as a prior and loses the tracks of
    vertices far along the beam.
    """
    y = graph["y"].bool()
    target = graph["target"].bool()
    w = torch.ones(y.shape, dtype=torch.float32, device=y.device)
    w[target] = pos_weight
    if pt_weight > 0:
        pt = graph["edge_pt"].float().clamp(min=1.0)
        w = torch.where(target, w * (1.0 + pt_weight * torch.log(pt)), w)
    if vz_weight > 0:
        vz2 = (graph["edge_vz"].float() / 100.0).square().clamp(max=4.0)
        w = torch.where(target, w * (1.0 + vz_weight * vz2), w)
    w[y & ~target] = nontarget_weight
    # Non-target true edges count as true if they are weighted at all.
    return y.float(), w


def _counts(scores: Tensor, graph: dict[str, Tensor], threshold: float) -> Tensor:
    sel = scores >= threshold
    target = graph["target"].bool()
    y = graph["y"].bool()
    return torch.stack(
        [
            (sel & target).sum(),
            target.sum(),
            (sel & y).sum(),
            sel.sum(),
        ]
    ).double()


class _EdgeModule(L.LightningModule):
    """Shared training logic of the edge filter and the edge classifier."""

    model: torch.nn.Module

    def __init__(
        self,
        lr: float,
        weight_decay: float,
        pos_weight: float,
        nontarget_weight: float,
        max_edges: int | None,
        threshold: float,
        lr_step: int,
        lr_gamma: float,
        lr_schedule: str = "step",
        lr_min: float = 0.0,
        pt_weight: float = 0.0,
        vz_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("step", "cosine"):
            raise ConfigError(f"training.lr_schedule: '{lr_schedule}' unknown; use step or cosine")
        for name, value in (("pt_weight", pt_weight), ("vz_weight", vz_weight)):
            if value < 0:
                raise ConfigError(f"training.{name}: must be >= 0, got {value}")
        self.pt_weight = pt_weight
        self.vz_weight = vz_weight
        self.lr_schedule = lr_schedule
        self.lr_min = lr_min
        self.lr = lr
        self.weight_decay = weight_decay
        self.pos_weight = pos_weight
        self.nontarget_weight = nontarget_weight
        self.max_edges = max_edges
        self.threshold = threshold
        self.lr_step = lr_step
        self.lr_gamma = lr_gamma
        self._val: list[Tensor] = []

    def logits(self, graph: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def _maybe_subsample(self, graph: dict[str, Tensor]) -> dict[str, Tensor]:
        # Random edge subsets bound the memory of a training step on huge graphs.
        e = graph["edge_index"].shape[1]
        if self.max_edges is None or e <= self.max_edges:
            return graph
        keep = torch.randperm(e, device=graph["edge_index"].device)[: self.max_edges]
        out = dict(graph)
        for k in ("edge_index",):
            out[k] = graph[k][:, keep]
        for k in EDGE_KEYS:
            if k in graph:
                out[k] = graph[k][keep]
        return out

    def training_step(self, graph: dict[str, Tensor], batch_idx: int) -> Tensor:
        for name, weight in (("pt", self.pt_weight), ("vz", self.vz_weight)):
            if weight > 0:
                if f"particle_{name}" not in graph:
                    raise ConfigError(
                        f"training.{name}_weight needs graphs with particle_{name} (graph "
                        "files written before that field existed lack it): rerun the graph "
                        "construction stage"
                    )
                graph = {**graph, f"edge_{name}": graph[f"particle_{name}"][graph["edge_index"][0]]}
        graph = self._maybe_subsample(graph)
        logits = self.logits(graph)
        y, w = edge_weights(
            graph, self.pos_weight, self.nontarget_weight, self.pt_weight, self.vz_weight
        )
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=w)
        loss = loss * w.numel() / w.sum().clamp(min=1.0)
        # Per step, and the epoch's mean over every process (comparable across DDP runs).
        self.log("train_loss", loss, prog_bar=True, batch_size=1)
        self.log(
            "train_loss_epoch", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=1
        )
        return loss

    def validation_step(self, graph: dict[str, Tensor], batch_idx: int) -> None:
        scores = torch.sigmoid(self.logits(graph))
        self._val.append(_counts(scores, graph, self.threshold))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        c = torch.stack(self._val).sum(0)
        self._val.clear()
        if self.trainer.world_size > 1:
            # DDP: pool the counts of every process (a mean of per-process ratios is not
            # the efficiency of the whole validation set).
            c = self.all_gather(c).reshape(-1, c.shape[-1]).sum(0)
        eff = c[0] / c[1].clamp(min=1)
        pur = c[2] / c[3].clamp(min=1)
        self.log_dict({"val_efficiency": eff, "val_purity": pur}, prog_bar=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "cosine":
            # One cosine from lr to lr_min over the whole run, stepped every batch.
            total = max(int(self.trainer.estimated_stepping_batches), 1)
            sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=total, eta_min=self.lr_min
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.lr_step, gamma=self.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class EdgeFilterModule(_EdgeModule):
    """Trains an :class:`~lhcml.gnn.edge_filter.EdgeFilter` with weighted BCE.

    Args:
        model: the filter.
        lr, weight_decay: AdamW settings.
        pos_weight: weight of target edges against false edges.
        nontarget_weight: weight of true edges of non-target particles.
        max_edges: random edges per training step (``None``: all).
        threshold: score cut of the validation efficiency / purity.
        lr_step, lr_gamma: step learning-rate decay (epochs, factor).
    """

    def __init__(
        self,
        model: EdgeFilter,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        pos_weight: float = 3.0,
        nontarget_weight: float = 0.0,
        max_edges: int | None = 400_000,
        threshold: float = 0.05,
        lr_step: int = 10,
        lr_gamma: float = 0.5,
    ) -> None:
        super().__init__(
            lr, weight_decay, pos_weight, nontarget_weight, max_edges, threshold, lr_step, lr_gamma
        )
        self.model = model

    def logits(self, graph: dict[str, Tensor]) -> Tensor:
        return self.model(graph["x"], graph["edge_index"])


class EdgeClassifierModule(_EdgeModule):
    """Trains an :class:`~lhcml.gnn.edge_classification.InteractionNetwork` with weighted BCE.

    Args: as :class:`EdgeFilterModule`, and
        lr_schedule: ``step`` (``lr_step``, ``lr_gamma``) or ``cosine`` (from ``lr`` to
            ``lr_min`` over all training steps, per step).
        lr_min: final learning rate of the cosine.
        pt_weight, vz_weight: target edges weigh more with their particle's pT and vertex
            z (:func:`edge_weights`; 0: all target edges alike).
    """

    def __init__(
        self,
        model: InteractionNetwork,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        pos_weight: float = 1.0,
        nontarget_weight: float = 0.0,
        max_edges: int | None = None,
        threshold: float = 0.5,
        lr_step: int = 10,
        lr_gamma: float = 0.5,
        lr_schedule: str = "step",
        lr_min: float = 0.0,
        pt_weight: float = 0.0,
        vz_weight: float = 0.0,
    ) -> None:
        super().__init__(
            lr,
            weight_decay,
            pos_weight,
            nontarget_weight,
            max_edges,
            threshold,
            lr_step,
            lr_gamma,
            lr_schedule,
            lr_min,
            pt_weight,
            vz_weight,
        )
        self.model = model

    def _maybe_subsample(self, graph: dict[str, Tensor]) -> dict[str, Tensor]:
        # Message passing needs whole neighbourhoods: a training step takes the edges
        # leaving the hits of a random azimuth wedge (about max_edges of them), not a
        # random subset; hits without edges are dropped.
        e = graph["edge_index"].shape[1]
        if self.max_edges is None or e <= self.max_edges:
            return graph
        phi = graph["x"][:, 1]  # azimuth / pi in [-1, 1)
        start = torch.rand((), device=phi.device) * 2 - 1
        wedge = torch.remainder(phi - start, 2.0) < 2.0 * self.max_edges / e
        keep = wedge[graph["edge_index"][0]]
        out = {k: v for k, v in graph.items() if k not in NODE_TRUTH_KEYS}
        for k in EDGE_KEYS:
            if k in graph:
                out[k] = graph[k][keep]
        out["x"], out["edge_index"] = compact(graph["x"], graph["edge_index"][:, keep])
        return out

    def logits(self, graph: dict[str, Tensor]) -> Tensor:
        x, edge_index = compact(graph["x"], graph["edge_index"])
        return self.model(x, edge_index)


class MetricLearningModule(L.LightningModule):
    """Trains a :class:`~lhcml.gnn.graph_construction.MetricLearning` embedding.

    Each step takes one event's node graph: positives are the truth edges of target
    particles, negatives random pairs and hard negatives (neighbours in the current
    embedding from other particles).

    Args:
        model: the embedding MLP.
        lr, weight_decay: AdamW settings.
        margin: hinge margin (the radius of the graph built afterwards).
        pos_weight: weight of the true-pair term of the loss.
        n_random: random pairs per step.
        k_hard: neighbours of each hard-negative query.
        n_hard_queries: hits whose neighbours are hard-negative candidates per step.
        r_val: radius of the validation graph; k_val: its neighbours per hit.
        lr_step, lr_gamma: step learning-rate decay.
        seed: random pairs.
    """

    def __init__(
        self,
        model: MetricLearning,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        margin: float = 0.1,
        pos_weight: float = 2.0,
        n_random: int = 200_000,
        k_hard: int = 50,
        n_hard_queries: int = 5_000,
        r_val: float = 0.1,
        k_val: int = 50,
        lr_step: int = 10,
        lr_gamma: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.margin = margin
        self.pos_weight = pos_weight
        self.n_random = n_random
        self.k_hard = k_hard
        self.n_hard_queries = n_hard_queries
        self.r_val = r_val
        self.k_val = k_val
        self.lr_step = lr_step
        self.lr_gamma = lr_gamma
        self.rng = np.random.default_rng(seed)
        self._val: list[dict[str, float]] = []

    def training_step(self, graph: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = graph["x"]
        emb = self.model(x)
        pairs, label = training_pairs(
            emb.detach().cpu().numpy(),
            graph["truth_edge_index"].cpu().numpy(),
            graph["truth_target"].cpu().numpy().astype(bool),
            graph["particle_id"].cpu().numpy(),
            n_random=self.n_random,
            k_hard=self.k_hard,
            r_hard=self.margin,
            n_hard_queries=self.n_hard_queries,
            rng=self.rng,
        )
        loss = hinge_loss(
            emb,
            torch.from_numpy(pairs).to(x.device),
            torch.from_numpy(label).to(x.device),
            self.margin,
            self.pos_weight,
        )
        self.log("train_loss", loss, prog_bar=True, batch_size=1)
        return loss

    def validation_step(self, graph: dict[str, Tensor], batch_idx: int) -> None:
        from lhcml.gnn.features import graph_metrics
        from lhcml.gnn.graph_construction.metric_learning import radius_graph

        g = EventGraph.from_dict({k: v.cpu() for k, v in graph.items()})
        emb = self.model(graph["x"]).detach().cpu().numpy()
        g.edge_index = radius_graph(emb, self.r_val, self.k_val, _distance_key(g.x))
        g.relabel()
        self._val.append(graph_metrics([g]))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        found = sum(m["target_truth_edges_found"] for m in self._val)
        total = sum(m["target_truth_edges"] for m in self._val)
        true = sum(m["selected_true_edges"] for m in self._val)
        sel = sum(m["selected_edges"] for m in self._val)
        self._val.clear()
        self.log_dict(
            {
                "val_efficiency": found / max(total, 1),
                "val_purity": true / max(sel, 1),
                "val_edges": float(sel),
            },
            prog_bar=True,
        )

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.lr_step, gamma=self.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def _distance_key(x: np.ndarray) -> np.ndarray:
    """Distance from the origin (scaled) of each node: ``hypot(r, z)``."""
    return np.hypot(x[:, 0], x[:, 2])
