"""Train the MaskFormer finder: the hit filter, then the tracker on the filter's output.

Both are thin Lightning wrappers around the pure modules of
:mod:`lhcml.reco.maskformer.model`; one input per step (an azimuth slice of an event for
the filter, a wedge for the tracker), as hepattn trains on one event per step. Every
input is rotated by a random azimuth, so the networks see no preferred phi.

The model directory gets ``config.yaml`` (the config with the filter cut chosen on the
validation events), ``filter.pt``, ``tracker.pt`` and ``metrics.json`` (losses, filter
efficiency / purity, tracking efficiency / fake rate on the validation events), each
written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from lhcml.errors import InputError
from lhcml.io.atomic import write_json_atomic, write_text_atomic
from lhcml.jets.training import save_weights
from lhcml.reco.maskformer.config import MaskFormerConfig, StageTraining
from lhcml.reco.maskformer.data import (
    PreparedEvent,
    hit_features,
    n_features,
    prepare_event,
    track_targets,
    wrap,
)
from lhcml.reco.maskformer.infer import MaskFormerFinder, filter_logits
from lhcml.reco.maskformer.matching import LossWeights, maskformer_loss
from lhcml.reco.maskformer.model import HitFilter, MaskFormer

log = logging.getLogger(__name__)


def read_events(directory: str | Path, limit: int | None, progress: bool) -> list[PreparedEvent]:
    """Prepared events with truth from a directory.

    Raises:
        InputError: no events, or events without truth.
    """
    from lhcml.gnn.runtime import track_progress
    from lhcml.io import list_events, read_event

    directory = Path(directory)
    ids = list_events(directory) if directory.is_dir() else []
    if not ids:
        raise InputError("no events to train on", path=directory)
    out = []
    for eid in track_progress(ids[:limit] if limit else ids, f"reading {directory}", progress):
        event = read_event(directory, eid)
        if not event.has_truth:
            raise InputError(f"event {eid} has no truth: training needs it", path=directory)
        out.append(prepare_event(event))
    return out


class FilterSlices(torch.utils.data.Dataset):
    """Contiguous phi slices of ``slice_hits`` hits at random azimuth rotations."""

    def __init__(self, events: list[PreparedEvent], per_event: int, slice_hits: int, seed: int):
        self.events = events
        self.per_event = per_event
        self.slice_hits = slice_hits
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.events) * self.per_event

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ev = self.events[i % len(self.events)]
        n = len(ev)
        start = int(self.rng.integers(n))
        idx = (start + np.arange(min(self.slice_hits, n))) % n
        phi = wrap(ev.phi[idx] + self.rng.uniform(-np.pi, np.pi))
        x = hit_features(ev.r[idx], phi, ev.z[idx])
        assert ev.target is not None
        return torch.from_numpy(x), torch.from_numpy(ev.target[idx].astype(np.float32))


class TrackerWedges(torch.utils.data.Dataset):
    """Wedges of filtered events at random azimuths, with their tracks' hit masks."""

    def __init__(
        self,
        events: list[PreparedEvent],
        per_event: int,
        n_wedges: int,
        margin: float,
        min_hits: int,
        seed: int,
    ):
        self.events = events
        self.per_event = per_event
        self.half_width = np.pi / n_wedges + margin
        self.min_hits = min_hits
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.events) * self.per_event

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ev = self.events[i % len(self.events)]
        rel = wrap(ev.phi - self.rng.uniform(-np.pi, np.pi))
        sel = np.flatnonzero(np.abs(rel) <= self.half_width)
        sel = sel[np.argsort(rel[sel], kind="stable")]
        x = hit_features(ev.r[sel], rel[sel], ev.z[sel])
        assert ev.particle_id is not None and ev.target is not None
        masks, _ = track_targets(ev.particle_id[sel], ev.target[sel], self.min_hits)
        return torch.from_numpy(x), torch.from_numpy(masks.astype(np.float32))


class _Stage(L.LightningModule):
    """AdamW + one-cycle cosine schedule over the trainer's steps."""

    def __init__(self, net: torch.nn.Module, opts: StageTraining):
        super().__init__()
        self.net = net
        self.opts = opts

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(
            self.net.parameters(), lr=self.opts.lr, weight_decay=self.opts.weight_decay
        )
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.opts.lr, total_steps=steps, pct_start=min(0.1, 100 / steps)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class FilterModule(_Stage):
    """Binary cross-entropy of the hit filter."""

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.binary_cross_entropy_with_logits(self.net(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, batch_size=1)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), batch_size=1)


class TrackerModule(_Stage):
    """Hungarian-matched mask + class loss of the MaskFormer (every decoder layer)."""

    def __init__(self, net: torch.nn.Module, opts: StageTraining, weights: LossWeights):
        super().__init__(net, opts)
        self.weights = weights

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, masks = batch
        return maskformer_loss(self.net(x), masks, self.weights)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out = self._loss(batch)
        self.log_dict({f"train_{k}": v for k, v in out.items()}, batch_size=1)
        return out["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        out = self._loss(batch)
        self.log_dict({f"val_{k}": v for k, v in out.items()}, batch_size=1)


def _fit(
    module: _Stage,
    train: torch.utils.data.Dataset,
    val: torch.utils.data.Dataset,
    opts: StageTraining,
    work: Path,
    device: str,
    progress: bool,
) -> dict[str, float]:
    from lhcml._device import trainer_device
    from lhcml.gnn.runtime import lightning_quiet, make_trainer

    trainer_opts: dict[str, Any] = {
        **trainer_device(device),
        "max_epochs": opts.epochs,
        "accumulate_grad_batches": opts.accumulate,
        "gradient_clip_val": 1.0,
    }
    if opts.max_minutes:
        trainer_opts["max_time"] = {"minutes": opts.max_minutes}
    loader = torch.utils.data.DataLoader(train, batch_size=None, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val, batch_size=None)
    start = time.perf_counter()
    with lightning_quiet(progress):
        trainer = make_trainer(trainer_opts, work, progress=progress)
        trainer.fit(module, loader, val_loader)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["minutes"] = (time.perf_counter() - start) / 60
    metrics["steps"] = int(trainer.global_step)
    return metrics


def filter_metrics(prob: np.ndarray, target: np.ndarray, cut: float) -> dict[str, float]:
    """Efficiency (target hits kept), purity (kept hits that are target) and kept share."""
    keep = prob > cut
    return {
        "cut": float(cut),
        "efficiency": float((keep & target).sum() / max(target.sum(), 1)),
        "purity": float((keep & target).sum() / max(keep.sum(), 1)),
        "kept_share": float(keep.mean()) if len(keep) else 0.0,
    }


def train(
    cfg: MaskFormerConfig,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Train the hit filter and the tracker; write the model directory.

    Returns:
        The metrics written to ``metrics.json``.
    """
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, verbose=False)
    train_events = read_events(cfg.data.train, cfg.data.max_train, progress)
    val_events = read_events(cfg.data.val, cfg.data.max_val, progress)
    metrics: dict[str, Any] = {"config": cfg.to_dict(), "n_train": len(train_events)}
    metrics["n_val"] = len(val_events)

    # 1. Hit filter.
    tf = cfg.train_filter
    hit_filter = HitFilter(n_features(), **cfg.filter)
    metrics["filter"] = _fit(
        FilterModule(hit_filter, tf),
        FilterSlices(train_events, tf.samples_per_event, tf.slice_hits, cfg.seed),
        FilterSlices(val_events, 2, tf.slice_hits, cfg.seed + 1),
        tf,
        out / "logs_filter",
        device,
        progress,
    )
    hit_filter.eval()
    val_prob = [1 / (1 + np.exp(-filter_logits(hit_filter, ev, device))) for ev in val_events]
    p_all = np.concatenate(val_prob)
    t_all = np.concatenate([ev.target for ev in val_events])  # type: ignore[misc]
    cut = float(np.quantile(p_all[t_all], 1 - tf.target_efficiency)) if t_all.any() else 0.5
    metrics["filter"]["val"] = filter_metrics(p_all, t_all, cut)
    inference = dataclasses.replace(cfg.inference, filter_cut=cut)
    cfg = dataclasses.replace(cfg, inference=inference)
    save_weights(hit_filter, out / "filter.pt")

    # 2. Tracker, on the hits the filter keeps.
    def filtered(events: list[PreparedEvent]) -> list[PreparedEvent]:
        if cfg.data.tracker_hits == "truth":
            return [ev.subset(ev.target) for ev in events]  # type: ignore[arg-type]
        kept = []
        for ev in events:
            logit = filter_logits(hit_filter, ev, device)
            kept.append(ev.subset(logit > np.log(cut / (1 - cut))))
        return kept

    tt = cfg.train_tracker
    tracker = MaskFormer(n_features(), **cfg.tracker)
    w = cfg.wedges
    mh = cfg.inference.min_hits
    metrics["tracker"] = _fit(
        TrackerModule(tracker, tt, cfg.loss),
        TrackerWedges(filtered(train_events), tt.samples_per_event, w.n_wedges, w.margin, mh, 7),
        TrackerWedges(filtered(val_events), 4, w.n_wedges, w.margin, mh, cfg.seed + 2),
        tt,
        out / "logs_tracker",
        device,
        progress,
    )
    tracker.eval()
    save_weights(tracker, out / "tracker.pt")
    write_text_atomic(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    # 3. The finder on the validation events, as `lhcml reconstruct` runs it.
    metrics["val_tracking"] = evaluate_finder(MaskFormerFinder(out, device=device), cfg.data)
    write_json_atomic(out / "metrics.json", metrics)
    log.info("metrics: %s", json.dumps(metrics["val_tracking"]))
    return metrics


def evaluate_finder(finder: MaskFormerFinder, data: Any) -> dict[str, Any]:
    """Efficiency (double majority and ATLAS, target particles, tracks >= 3 hits), fake
    rate and seconds per event of the finder on the validation events."""
    from lhcml.io import list_events, read_event
    from lhcml.metrics.tracking import TrackSelection, tracking_performance
    from lhcml.metrics.trackml import score_event
    from lhcml.reco.maskformer.data import TARGET

    ids = list_events(Path(data.val))[: data.max_val]
    rows = []
    for eid in ids:
        event = read_event(Path(data.val), eid)
        assert event.truth is not None and event.particles is not None
        start = time.perf_counter()
        result = finder.reconstruct(event)
        seconds = time.perf_counter() - start
        row: dict[str, Any] = {"event_id": eid, "seconds": seconds, "n_kept": result.n_kept}
        for matching in ("double_majority", "atlas"):
            perf = tracking_performance(
                result.tracks,
                event.truth,
                event.particles,
                hits=event.hits,
                matching=matching,  # type: ignore[arg-type]
                fiducial=TARGET,
                track_selection=TrackSelection(min_hits=3),
            )
            row[matching] = {
                name: {"value": r.value, "k": r.k, "n": r.n}
                for name, r in (
                    ("efficiency", perf.efficiency),
                    ("fake_rate", perf.fake_rate),
                    ("duplicate_rate", perf.duplicate_rate),
                )
            }
        row["trackml_score"] = score_event(event.truth, result.tracks)
        rows.append(row)
    return {"events": rows}
