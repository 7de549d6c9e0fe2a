"""Training TrackFormer: candidate preparation, a thin LightningModule, saving and loading.

**Experiment config** (YAML, ``experiments/trackformer/*.yaml``; keys are the classes'
``__init__`` arguments):

.. code-block:: yaml

    model: {d_model: 32, n_heads: 4, n_layers: 2, d_ff: 64}   # TrackFormer
    features: {coords: rdphiz, seed: helix}                   # FeatureConfig
    loss: gnll                                                 # gnll | mse | quantile
    optim: {lr: 2.0e-3, weight_decay: 1.0e-4, candidate_weight: 0.5, hit_weight: 0.5}
    training: {batch_size: 256, max_epochs: 30, max_minutes: 5, seed: 1, threads: 2}
    # fine-tuning: start from a trained model, train only some parameters (name prefixes)
    #   training: {init_from: src/lhcml/fitting/models/default, train_only: [cand_head, hit_head]}
    data:
      train: [data/fitting/train.npz]     # candidate files (lhcml fit prepare)
      val: [data/fitting/val.npz]
      regress_on: pure                     # pure | real

**Run directory** (what :func:`train` writes and :func:`lhcml.fitting.checkpoint.load_model` reads): ``model.pt``
(state dict, read with ``weights_only=True``; it holds the uncertainty calibration
``sigma_scale``, fitted on the validation candidates by :func:`calibrate_uncertainties`),
``config.yaml`` (the experiment config with the resolved feature options) and
``metrics.json`` (training history, calibration and validation metrics).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import ConfigError, InputError
from lhcml.fitting.candidates import Candidates, Corruption, TruthSelection
from lhcml.fitting.checkpoint import check_config, load_config
from lhcml.fitting.dataset import FeatureConfig

#: Parameters of the quality heads (``training.train_only`` naming only these keeps the
#: regression, and its uncertainty calibration, of ``training.init_from``).
QUALITY_HEADS = ("cand_head", "hit_head")


def prepare_candidates(
    event_dirs: Sequence[str | Path],
    *,
    selection: TruthSelection | None = None,
    corruption: Corruption | None = None,
    seed: int = 1,
    max_events: int | None = None,
    submissions: Sequence[str | Path] | None = None,
    min_hits: int = 0,
    progress: Any = None,
) -> Candidates:
    """Truth candidates (+ corrupted copies if ``corruption``) of every event of the
    directories, in order; or, with ``submissions``, a track finder's tracks.

    Args:
        event_dirs: lhcml event directories (or one event prefix each).
        selection: which particles make candidates.
        corruption: fractions of corrupted copies; None: truth only.
        seed: random seed of the corruption (mixed with the event id).
        max_events: at most this many events per directory.
        submissions: one ``event*-submission.csv`` directory per event directory: the
            candidates are then the finder's tracks (truth-labelled, ``kind`` ``found``;
            ``selection`` and ``corruption`` are not used), e.g. the GNN chain's output
            for training the quality heads.
        min_hits: with ``submissions``, drop tracks with fewer hits.
        progress: optional callable ``(done, total)``.

    Raises:
        InputError: no events, a missing submission file.
        ConfigError: ``submissions`` not one per event directory.
    """
    from lhcml.fitting.candidates import corrupt_candidates, from_assignment, truth_candidates
    from lhcml.io import list_events, read_event
    from lhcml.metrics.evaluate import read_submission

    if submissions is not None and len(submissions) != len(event_dirs):
        raise ConfigError("--submissions: give one submission directory per event directory")
    sub_of = dict(zip(map(str, event_dirs), submissions or [], strict=False))

    jobs: list[tuple[Path, int]] = []
    for d in event_dirs:
        d = Path(d)
        ids = list_events(d)
        if not ids:
            raise InputError("no events found", path=d)
        jobs += [(d, i) for i in ids[:max_events]]
    parts = []
    for k, (d, eid) in enumerate(jobs):
        event = read_event(d, eid, parts=("hits", "truth", "particles"))
        if str(d) in sub_of:
            path = Path(sub_of[str(d)]) / f"event{eid:09d}-submission.csv"
            if not path.is_file():
                raise InputError("submission file missing", path=path)
            found = from_assignment(event, read_submission(path))
            parts.append(found.select(np.flatnonzero(found.lengths >= min_hits)))
            if progress is not None:
                progress(k + 1, len(jobs))
            continue
        truth = truth_candidates(event, selection)
        parts.append(truth)
        if corruption is not None:
            rng = np.random.default_rng([seed, eid, k])
            parts.append(corrupt_candidates(event, truth, rng, corruption))
        if progress is not None:
            progress(k + 1, len(jobs))
    return Candidates.concat(parts)


def _lightning_module(
    model: dict[str, Any],
    loss: str,
    optim: dict[str, Any],
    n_hit: int,
    n_global: int,
    max_seconds: float | None = None,
) -> Any:
    import lightning.pytorch as pl
    import torch

    from lhcml.fitting.losses import outputs_per_parameter, regression_loss
    from lhcml.fitting.trackformer import TrackFormer

    class LitTrackFormer(pl.LightningModule):
        """Thin Lightning wrapper: multi-task loss and optimiser."""

        def __init__(self) -> None:
            super().__init__()
            self.model = TrackFormer(
                n_hit_features=n_hit,
                n_global_features=n_global,
                outputs_per_param=outputs_per_parameter(loss),
                **model,
            )
            self.loss = loss
            self.lr = float(optim.get("lr", 2e-3))
            self.weight_decay = float(optim.get("weight_decay", 1e-4))
            self.cw = float(optim.get("candidate_weight", 0.5))
            self.hw = float(optim.get("hit_weight", 0.5))

        def losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
            out = self.model(batch["hits"], batch["detector_id"], batch["mask"], batch["global"])
            reg = regression_loss(out["params"], batch["target"], batch["reg_weight"], self.loss)
            bce = torch.nn.functional.binary_cross_entropy_with_logits
            cand = bce(out["cand_logit"], batch["cand_label"])
            mask = batch["mask"]
            hit = bce(out["hit_logit"][mask], batch["hit_label"][mask])
            return {
                "reg": reg,
                "cand": cand,
                "hit": hit,
                "total": reg + self.cw * cand + self.hw * hit,
            }

        def training_step(self, batch: dict[str, Any], _idx: int) -> torch.Tensor:
            parts = self.losses(batch)
            for k, v in parts.items():
                self.log(f"train_{k}", v, batch_size=int(batch["mask"].shape[0]))
            return parts["total"]

        def on_train_start(self) -> None:
            self.t_start = time.perf_counter()

        def configure_optimizers(self) -> Any:
            params = [p for p in self.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
            steps = max(int(self.trainer.estimated_stepping_batches), 1)
            self.t_start = time.perf_counter()

            def factor(step: int) -> float:
                # Warm-up then cosine decay over the run; the run's progress is the larger
                # of the step and wall-clock fractions, so a time-limited run (shared CPUs
                # of unknown speed) still ends annealed.
                progress = step / steps
                if max_seconds:
                    progress = max(progress, (time.perf_counter() - self.t_start) / max_seconds)
                progress = min(progress, 1.0)
                if progress < 0.05:
                    return 0.02 + 0.98 * progress / 0.05
                return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (progress - 0.05) / 0.95))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return LitTrackFormer()


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        run_dir: where the model, config and metrics were written.
        seconds: training wall time.
        epochs: epochs completed.
        steps: optimiser steps.
        history: mean training loss per epoch.
        metrics: validation metrics (:func:`lhcml.fitting.evaluate.evaluate_model`).
    """

    run_dir: Path
    seconds: float
    epochs: int
    steps: int
    history: list[float]
    metrics: dict[str, Any]


def train(
    config: dict[str, Any] | str | Path,
    run_dir: str | Path,
    *,
    train_cands: Candidates | None = None,
    val_cands: Candidates | None = None,
    max_minutes: float | None = None,
    progress: bool = False,
    device: str = "cpu",
) -> TrainResult:
    """Train TrackFormer as ``config`` says and write the run directory.

    Args:
        config: experiment config (dict or YAML path).
        run_dir: output directory (created).
        train_cands, val_cands: candidates instead of the config's ``data`` files.
        max_minutes: wall-clock cap overriding ``training.max_minutes``.
        progress: show Lightning's progress bar.
        device: ``cpu`` or ``cuda`` (``cuda:N``).

    Raises:
        ConfigError: bad config or device. InputError: missing data.
    """
    import lightning.pytorch as pl
    import torch
    import yaml

    from lhcml.fitting.dataset import Batches, encode
    from lhcml.fitting.evaluate import evaluate_model
    from lhcml.io import write_json_atomic, write_text_atomic

    cfg = load_config(config) if isinstance(config, str | Path) else check_config(config)
    tr = cfg["training"]
    feat = FeatureConfig(**cfg["features"]).validate()
    if train_cands is None:
        if not cfg["data"]["train"]:
            raise ConfigError("data.train: no candidate files given")
        train_cands = Candidates.concat(Candidates.load(f) for f in cfg["data"]["train"])
    if val_cands is None and cfg["data"]["val"]:
        val_cands = Candidates.concat(Candidates.load(f) for f in cfg["data"]["val"])
    if len(train_cands) == 0:
        raise InputError("no training candidates")
    seed = int(tr.get("seed", 1))
    threads = int(tr.get("threads", 2))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    pl.seed_everything(seed, verbose=False)
    regress_on = cfg["data"].get("regress_on", "pure")
    enc = encode(train_cands, feat, regress_on=regress_on)
    batches = Batches(
        enc,
        int(tr.get("batch_size", 256)),
        shuffle=True,
        seed=seed,
        max_tokens=int(tr.get("max_tokens", 0)),
    )
    minutes = max_minutes if max_minutes is not None else tr.get("max_minutes")
    lit = _lightning_module(
        cfg["model"],
        cfg["loss"],
        cfg["optim"],
        feat.n_hit_features,
        feat.n_global_features,
        max_seconds=60.0 * float(minutes) if minutes else None,
    )
    init = tr.get("init_from")
    if init is not None:
        path = Path(init) / "model.pt"
        if not path.is_file():
            raise ConfigError(f"training.init_from: no model.pt in {init}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            lit.model.load_state_dict(state)
        except RuntimeError as e:
            raise ConfigError(
                f"training.init_from: {init} does not match the model section ({e})"
            ) from None
    only = tr.get("train_only")
    if only is not None:
        names = [n for n, _ in lit.model.named_parameters()]
        unknown = [p for p in only if not any(n.startswith(p) for n in names)]
        if unknown:
            raise ConfigError(f"training.train_only: no parameters named {unknown}*")
        for n, par in lit.model.named_parameters():
            par.requires_grad_(any(n.startswith(p) for p in only))
    # The regression is frozen when only the quality heads train: keep its calibration.
    recalibrate = only is None or any(p not in QUALITY_HEADS for p in only)
    history: list[float] = []

    class _History(pl.Callback):
        def on_train_epoch_start(self, *_: Any) -> None:
            self.sum, self.n = 0.0, 0

        def on_train_batch_end(self, _t: Any, _m: Any, outputs: Any, *_: Any) -> None:
            self.sum += float(outputs["loss"])
            self.n += 1

        def on_train_epoch_end(self, *_: Any) -> None:
            history.append(self.sum / max(self.n, 1))

    from lhcml._device import trainer_device

    trainer = pl.Trainer(
        **{"devices": 1, **trainer_device(device)},
        max_epochs=int(tr.get("max_epochs", 20)),
        max_time={"minutes": float(minutes)} if minutes else None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        callbacks=[_History()],
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # Lightning's advice on dataloader workers and on logging intervals does not apply
        # to in-memory batches.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*isinstance.*treespec.*")
        trainer.fit(lit, train_dataloaders=batches)
    seconds = time.perf_counter() - t0
    model = lit.model.eval()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = copy.deepcopy(cfg)
    resolved["features"] = feat.to_dict()
    metrics: dict[str, Any] = {
        "training": {
            "seconds": round(seconds, 1),
            "epochs": int(trainer.current_epoch),
            "steps": int(trainer.global_step),
            "loss_per_epoch": [round(h, 5) for h in history],
            "train_candidates": len(train_cands),
            "threads": threads,
        }
    }
    if init is not None:
        metrics["training"]["init_from"] = str(init)
        metrics["training"]["train_only"] = only
    if val_cands is not None and len(val_cands):
        if recalibrate:
            metrics["calibration"] = calibrate_uncertainties(model, feat, cfg["loss"], val_cands)
        metrics["validation"] = evaluate_model(model, feat, cfg["loss"], val_cands)
    from lhcml.io.atomic import write_atomic

    write_atomic(run_dir / "model.pt", lambda p: torch.save(model.state_dict(), p))
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    write_json_atomic(run_dir / "metrics.json", metrics)
    torch.set_num_threads(old_threads)
    return TrainResult(
        run_dir=run_dir,
        seconds=seconds,
        epochs=int(trainer.current_epoch),
        steps=int(trainer.global_step),
        history=history,
        metrics=metrics,
    )


def calibrate_uncertainties(
    model: Any, features: FeatureConfig, loss: str, cands: Candidates
) -> dict[str, Any]:
    """Scale the predicted uncertainties so the pulls on ``cands`` (pure candidates with
    truth) have unit width (clipped RMS) per parameter; sets ``model.sigma_scale``.

    Returns:
        The pull widths before calibration and the factors applied.
    """
    import torch

    from lhcml.fitting.evaluate import predict, pulls
    from lhcml.fitting.targets import PARAMS
    from lhcml.metrics.resolution import clipped_rms

    model.sigma_scale.fill_(1.0)
    sel = cands.is_pure & np.all(np.isfinite(cands.targets), axis=1)
    if not sel.any():
        return {}
    sub = cands.select(sel)
    pred = predict(model, features, loss, sub)
    widths = [clipped_rms(p).width for p in pulls(pred.params, pred.sigma, sub.targets).T]
    scale = [w if np.isfinite(w) and w > 0 else 1.0 for w in widths]
    model.sigma_scale.copy_(torch.tensor(scale, dtype=model.sigma_scale.dtype))
    return {
        "pull_width_before": dict(zip(PARAMS, widths, strict=True)),
        "sigma_scale": dict(zip(PARAMS, scale, strict=True)),
        "candidates": int(sel.sum()),
    }
