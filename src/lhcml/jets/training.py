"""Training and evaluating jet taggers from an experiment config (YAML).

An experiment config (``experiments/jets/*.yaml``) has these keys, each section being
the ``__init__`` arguments of one class::

    seed: 42
    model_type: part          # part (ParticleTransformer), pfn (ParticleFlowNetwork),
                              # bdt (SubstructureBDT)
    model: {...}              # the model class
    data: {...}               # JetDataModule
    module: {...}             # JetTagger (optimiser, schedule); not for bdt
    trainer: {...}            # lightning.Trainer (max_epochs, precision, ...); not for bdt

:func:`train` writes a model directory::

    OUT/config.yaml     the config as run (overrides applied)
    OUT/weights.pt      state_dict (``torch.load(..., weights_only=True)``); bdt: model.pkl
    OUT/metrics.json    test-split metrics (accuracy, AUC, rejections) + throughput
    OUT/history.json    per-epoch training loss and validation loss / accuracy
    OUT/roc.png         ROC curve on the test split

:func:`load_model` reads it back; :func:`evaluate_model` evaluates it on any jets.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lhcml.errors import ConfigError, InputError
from lhcml.io.atomic import write_atomic, write_json_atomic, write_text_atomic
from lhcml.jets.dataset import JetData, make_loader, read_jets, select
from lhcml.jets.evaluation import classification_metrics, plot_roc, predict

MODEL_TYPES = ("part", "pfn", "bdt")
_SECTIONS = {"seed", "model_type", "model", "data", "module", "trainer", "name", "description"}


def model_class(model_type: str) -> type:
    """The class of a ``model_type``."""
    if model_type == "part":
        from lhcml.jets.models.part import ParticleTransformer

        return ParticleTransformer
    if model_type == "pfn":
        from lhcml.jets.models.pfn import ParticleFlowNetwork

        return ParticleFlowNetwork
    if model_type == "bdt":
        from lhcml.jets.models.substructure import SubstructureBDT

        return SubstructureBDT
    raise ConfigError(f"model_type: unknown '{model_type}'; choose one of {', '.join(MODEL_TYPES)}")


def build(cls: type, kwargs: dict[str, Any], section: str) -> Any:
    """``cls(**kwargs)`` with a :class:`ConfigError` naming the section on a bad key."""
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{section}: {e}") from e


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and check an experiment YAML (``yaml.safe_load``).

    Raises:
        ConfigError: unreadable file, unknown sections or model type.
    """
    return check_config(read_yaml(path), str(path))


def read_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` of a config file, a :class:`ConfigError` naming it if unreadable."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"config: cannot read {path}: {e}") from e


def check_config(cfg: Any, where: str = "config") -> dict[str, Any]:
    """Validate the sections of an experiment config (a dict); return it."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of sections")
    unknown = set(cfg) - _SECTIONS
    if unknown:
        raise ConfigError(f"{where}: unknown sections {sorted(unknown)}")
    model_class(cfg.get("model_type", "part"))
    for key in ("model", "data", "module", "trainer"):
        if not isinstance(cfg.get(key, {}), dict):
            raise ConfigError(f"{where}: section '{key}' must be a mapping")
    if "paths" not in cfg.get("data", {}):
        raise ConfigError(f"{where}: data.paths (the jet sample directories) is required")
    return cfg


class JetDataModule(L.LightningDataModule):
    """Train / val / test splits of jet samples (by event hash, see
    :func:`lhcml.jets.dataset.split_of`).

    Args:
        paths: sample directories / files / globs of all classes.
        classes: process names; class k is ``classes[k]`` (k = 0 is the background).
        batch_size: training batch size.
        eval_batch_size: validation / test batch size.
        max_particles: constituents per jet.
        fractions: train / val / test fractions.
        max_jets_per_class: cap per class and split (balance / quick runs); the val and
            test caps are this times their fraction over the train fraction.
        pool_batches: length bucketing of the training batches
            (:class:`~lhcml.jets.dataset.LengthBucketSampler`; 1: plain shuffling).
        seed: shuffling seed.
    """

    def __init__(
        self,
        paths: Sequence[str] | str,
        classes: Sequence[str] = ("qcd", "top"),
        batch_size: int = 256,
        eval_batch_size: int = 1024,
        max_particles: int = 128,
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
        max_jets_per_class: int | None = None,
        pool_batches: int = 32,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.classes = tuple(classes)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.max_particles = int(max_particles)
        self.fractions = tuple(float(f) for f in fractions)
        self.max_jets_per_class = max_jets_per_class
        self.pool_batches = int(pool_batches)
        self.seed = int(seed)
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("data.batch_size / eval_batch_size: must be >= 1")
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ConfigError(f"data.fractions: need three fractions summing to 1, got {fractions}")
        self._splits: dict[str, JetData] = {}
        self._all: JetData | None = None

    def split(self, name: str) -> JetData:
        """The jets of split ``name`` (read on first use)."""
        if name not in self._splits:
            cap = self.max_jets_per_class
            if cap is not None and name != "train":
                k = {"val": 1, "test": 2}[name]
                cap = max(1, math.ceil(cap * self.fractions[k] / max(self.fractions[0], 1e-9)))
            if self._all is None:  # read the files once for all splits
                self._all = read_jets(self.paths, self.classes, max_particles=self.max_particles)
            self._splits[name] = select(self._all, name, self.fractions, cap)
        return self._splits[name]

    def train_dataloader(self) -> Any:
        # Under DDP each process takes its share of the batches itself (the fit sets
        # use_distributed_sampler=False: Lightning cannot shard a custom batch sampler).
        trainer = self.trainer
        return make_loader(
            self.split("train"),
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            pool_batches=self.pool_batches,
            rank=0 if trainer is None else trainer.global_rank,
            world_size=1 if trainer is None else trainer.world_size,
        )

    def val_dataloader(self) -> Any:
        return make_loader(self.split("val"), self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> Any:
        return make_loader(self.split("test"), self.eval_batch_size, shuffle=False)


class JetTagger(L.LightningModule):
    """A thin Lightning wrapper: cross-entropy, AdamW, linear warm-up + cosine decay.

    Args:
        model: a tagger ``model(x, v, mask) -> logits``.
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases, norms, the class token).
        warmup_fraction: fraction of the steps with a linear warm-up.
        final_lr_fraction: learning rate at the end, as a fraction of ``lr``.
        label_smoothing: of the cross-entropy.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_fraction: float = 0.05,
        final_lr_fraction: float = 0.01,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.final_lr_fraction = final_lr_fraction
        self.label_smoothing = label_smoothing
        self.train_seconds = 0.0
        self.train_jets = 0
        self._t0 = 0.0
        self.history: list[dict[str, float]] = []
        self._epoch: dict[str, list[float]] = {}

    def forward(self, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(x, v, mask)

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(batch["x"], batch["v"], batch["mask"])
        loss = F.cross_entropy(logits.float(), batch["label"], label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == batch["label"]).float().mean()
        return loss, acc

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._t0 = time.perf_counter()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _acc = self._loss(batch)
        n = len(batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=n)
        self._epoch.setdefault("train_loss", []).append(float(loss.detach()) * n)
        self._epoch.setdefault("train_n", []).append(n)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Forward + backward + optimiser step of this batch (no data loading, no val).
        self.train_seconds += time.perf_counter() - self._t0
        self.train_jets += len(batch["label"])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, acc = self._loss(batch)
        n = len(batch["label"])
        self.log("val_loss", loss, prog_bar=True, batch_size=n)
        self.log("val_acc", acc, prog_bar=True, batch_size=n)
        for key, value in (("val_loss", loss), ("val_acc", acc)):
            self._epoch.setdefault(key, []).append(float(value) * n)
        self._epoch.setdefault("val_n", []).append(n)

    def on_train_epoch_end(self) -> None:
        e = self._epoch
        row = {"epoch": float(self.current_epoch)}
        loss_sum, n = sum(e.get("train_loss", [])), sum(e.get("train_n", []))
        if self.trainer.world_size > 1:
            # DDP: every process saw its own jets; the epoch loss is over all of them.
            t = self.trainer.strategy.reduce(
                torch.tensor([loss_sum, float(n)], dtype=torch.float64, device=self.device),
                reduce_op="sum",
            )
            loss_sum, n = float(t[0]), float(t[1])
        if n:
            row["train_loss"] = loss_sum / n
        # Every process validates on the whole validation split (no sharding): same value.
        if e.get("val_n"):
            row["val_loss"] = sum(e["val_loss"]) / sum(e["val_n"])
            row["val_acc"] = sum(e["val_acc"]) / sum(e["val_n"])
        self.history.append(row)
        self._epoch = {}

    def on_train_end(self) -> None:
        if self.trainer.world_size > 1:
            t = self.trainer.strategy.reduce(
                torch.tensor([float(self.train_jets)], device=self.device), reduce_op="sum"
            )
            self.train_jets = int(t[0])  # jets of every process; seconds are each one's

    def get_extra_state(self) -> dict[str, Any]:
        # In the state dict, so the history and timings come back from DDP spawn processes
        # with the weights (the inner model's own state dict, which is saved, has none).
        return {
            "history": self.history,
            "train_seconds": self.train_seconds,
            "train_jets": self.train_jets,
        }

    def set_extra_state(self, state: Any) -> None:
        if isinstance(state, dict):
            self.history = list(state.get("history", []))
            self.train_seconds = float(state.get("train_seconds", 0.0))
            self.train_jets = int(state.get("train_jets", 0))

    def configure_optimizers(self) -> Any:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            # Biases, norm weights, per-head / residual scales and the class token.
            (no_decay if p.ndim <= 1 or name.endswith("cls_token") else decay).append(p)
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.lr,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.warmup_fraction * total)
        final = self.final_lr_fraction

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _precision(value: Any) -> Any:
    # "auto": mixed precision on a GPU (AMP), full precision on CPUs.
    if value in (None, "auto"):
        return "16-mixed" if torch.cuda.is_available() else "32-true"
    return value


def dotted_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``cfg`` with ``{"section.key": value}`` overrides (None skipped),
    unchecked (each stage checks its own sections)."""
    cfg = copy.deepcopy(cfg)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if key:
            cfg.setdefault(section, {})[key] = value
        else:
            cfg[section] = value
    return cfg


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """:func:`dotted_overrides`, then :func:`check_config`."""
    return check_config(dotted_overrides(cfg, overrides))


def train(cfg: dict[str, Any], out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Train the experiment ``cfg`` and write the model directory ``out_dir``.

    Args:
        cfg: a checked experiment config (:func:`load_config`).
        out_dir: output directory (created).
        progress: show Lightning's progress bar.

    Returns:
        The metrics written to ``metrics.json``.
    """
    import yaml

    cfg = check_config(copy.deepcopy(cfg))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(cfg.get("seed", 42))
    model_type = cfg.get("model_type", "part")
    L.seed_everything(seed, workers=True, verbose=False)
    data_kwargs = {"seed": seed, **cfg["data"]}
    dm = build(JetDataModule, data_kwargs, "data")
    write_text_atomic(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    if model_type == "bdt":
        bdt = build(model_class("bdt"), {"seed": seed, **cfg.get("model", {})}, "model")
        train_data = dm.split("train")
        bdt.fit(train_data.jets, train_data.labels)
        train_seconds = time.perf_counter() - t0
        bdt.save(out / "model.pkl")
        info = {"train_jets_per_s": len(train_data) / max(train_seconds, 1e-9)}
        history: list[dict[str, float]] = []
    else:
        model = build(model_class(model_type), cfg.get("model", {}), "model")
        tagger = fit(model, dm, cfg, root_dir=out, progress=progress)
        train_seconds = time.perf_counter() - t0
        model.cpu()
        save_weights(model, out / "weights.pt")
        info = {
            "train_jets_per_s": tagger.train_jets / max(tagger.train_seconds, 1e-9),
            "epochs": len(tagger.history),
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        history = tagger.history
    write_json_atomic(out / "history.json", history)
    test = dm.split("test")
    metrics = evaluate_loaded(model_type, bdt if model_type == "bdt" else model, test)
    metrics.update(
        {
            "split": "test",
            "data": dm.paths,
            "n_train": len(dm.split("train")),
            "train_seconds": train_seconds,
            **info,
        }
    )
    _plot(model_type, metrics, out / "roc.png", cfg.get("name", model_type))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def fit(
    model: nn.Module,
    dm: JetDataModule,
    cfg: dict[str, Any],
    *,
    root_dir: str | Path | None = None,
    progress: bool = True,
) -> JetTagger:
    """Train a network tagger with Lightning (the ``module`` and ``trainer`` sections of
    ``cfg``); return the :class:`JetTagger` (timings, history; ``.trainer``)."""
    tagger = build(JetTagger, {"model": model, **cfg.get("module", {})}, "module")
    trainer_kwargs = {
        "max_epochs": 5,
        "accelerator": "auto",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": progress,
        "deterministic": False,
        "default_root_dir": None if root_dir is None else str(root_dir),
        "use_distributed_sampler": False,  # the batch sampler shards itself (DDP)
        **cfg.get("trainer", {}),
    }
    trainer_kwargs["precision"] = _precision(trainer_kwargs.get("precision"))
    with lightning_quiet(not progress):
        trainer = build(L.Trainer, trainer_kwargs, "trainer")
        trainer.fit(tagger, datamodule=dm)
    return tagger


@contextlib.contextmanager
def lightning_quiet(quiet: bool) -> Iterator[None]:
    """Silence Lightning warnings that are not ours to act on (in-process loading by
    design, short epochs, a pytree deprecation inside Lightning 2.6 with torch 2.13) and,
    when ``quiet``, its start-up INFO lines."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*isinstance.*treespec.*")
        if quiet:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """``torch.save(model.state_dict())`` atomically."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    blob = buf.getvalue()
    return write_atomic(path, lambda p: p.write_bytes(blob))


def evaluate_loaded(
    model_type: str, model: Any, data: JetData, device: str = "cpu"
) -> dict[str, Any]:
    """Metrics of a loaded model on ``data`` (plus the labels and signal scores, kept
    under ``_labels`` / ``_probs`` for plotting; not written)."""
    if model_type == "bdt":
        t0 = time.perf_counter()
        probs = model.predict_proba(data.jets)
        speed = len(data) / max(time.perf_counter() - t0, 1e-9)
    else:
        probs, speed = predict(model, data, device=device)
    metrics = classification_metrics(data.labels, probs, data.classes)
    metrics["infer_jets_per_s"] = speed
    metrics["_labels"] = data.labels
    metrics["_probs"] = probs
    return metrics


def _plot(model_type: str, metrics: dict[str, Any], path: Path, name: str) -> None:
    labels, probs = metrics.pop("_labels"), metrics.pop("_probs")
    classes = metrics["classes"]
    curves = []
    for k in range(1, len(classes)):
        sel = (labels == 0) | (labels == k)
        score = probs[sel, k] / np.maximum(probs[sel, k] + probs[sel, 0], 1e-12)
        tag = name if len(classes) == 2 else f"{name}: {classes[k]}"
        curves.append((tag, (labels[sel] == k).astype(int), score))
    title = f"{', '.join(classes[1:])} vs {classes[0]}"
    plot_roc(curves, path, title=title)


def load_model(model_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """A trained model and its config from a directory written by :func:`train`.

    Raises:
        InputError: missing or unreadable files.
    """
    model_dir = Path(model_dir)
    cfg_path = model_dir / "config.yaml"
    if not cfg_path.is_file():
        raise InputError("not a model directory (no config.yaml)", path=model_dir)
    cfg = load_config(cfg_path)
    model_type = cfg.get("model_type", "part")
    if model_type == "bdt":
        from lhcml.jets.models.substructure import SubstructureBDT

        return SubstructureBDT.load(model_dir / "model.pkl"), cfg
    model = build(model_class(model_type), cfg.get("model", {}), "model")
    weights = model_dir / "weights.pt"
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError) as e:
        raise InputError(f"cannot load the weights: {e}", path=weights) from e
    model.eval()
    return model, cfg


def evaluate_model(
    model_dir: str | Path,
    paths: Sequence[str | Path] | None = None,
    *,
    split: str | None = "test",
    out_dir: str | Path | None = None,
    max_jets_per_class: int | None = None,
    backend: str = "torch",
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a trained model directory on jets.

    Args:
        model_dir: a directory written by :func:`train`.
        paths: jet samples (default: the training config's ``data.paths``).
        split: ``train``, ``val``, ``test`` or None (all jets of ``paths``).
        out_dir: where to write ``metrics.json`` and ``roc.png`` (optional).
        max_jets_per_class: cap per class.
        backend: ``torch``, or ``onnx`` (a ParT exported now and run by ONNX Runtime).
        device: torch backend: ``cpu`` or ``cuda`` (``cuda:N``).

    Returns:
        The metrics (``backend`` among them).
    """
    if backend not in ("torch", "onnx"):
        raise ConfigError(f"--backend: unknown '{backend}'; choose torch or onnx")
    from lhcml._device import check_device

    device = check_device(device)
    model, cfg = load_model(model_dir)
    if backend == "onnx":
        from lhcml.jets.onnx import onnx_tagger

        if device != "cpu":
            raise ConfigError("--backend onnx runs on the CPU; use --device cpu")
        model = onnx_tagger(model)
    elif cfg.get("model_type", "part") != "bdt":
        model = model.to(device)
    data_cfg = cfg.get("data", {})
    paths = list(paths) if paths else list(data_cfg.get("paths", []))
    data = read_jets(
        paths,
        data_cfg.get("classes", ("qcd", "top")),
        max_particles=data_cfg.get("max_particles", 128),
        split=split,
        fractions=data_cfg.get("fractions", (0.8, 0.1, 0.1)),
        max_jets_per_class=max_jets_per_class,
    )
    model_type = cfg.get("model_type", "part")
    metrics = evaluate_loaded(model_type, model, data, device=device)
    metrics.update({"split": split or "all", "data": [str(p) for p in paths], "backend": backend})
    if out_dir is not None:
        out = Path(out_dir)
        _plot(model_type, metrics, out / "roc.png", cfg.get("name", model_type))
        write_json_atomic(out / "metrics.json", metrics)
    else:
        metrics.pop("_labels")
        metrics.pop("_probs")
    return metrics
