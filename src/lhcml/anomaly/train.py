"""Training of the anomaly stage: contrastive encoder (Lightning), then the background
banks and the NAE on its representations; writes a model directory.

A model directory holds ``config.yaml`` (the experiment, as run), ``weights.pt`` (the
:class:`~lhcml.anomaly.scores.AnomalyDetector` state dict: encoder, NAE, banks) and
``history.json`` (epoch losses, timings). ``lhcml anomaly evaluate`` adds
``metrics.json`` and plots.

Config sections (``experiments/anomaly/*.yaml``): ``data`` (:class:`DataConfig`),
``augmentations`` (``physical`` / ``anomalous`` lists, :class:`~lhcml.anomaly.augment.
Pipeline`), ``model`` (:class:`~lhcml.anomaly.model.JetEncoder` arguments), ``module``
(:class:`ContrastiveModule` arguments bar the networks), ``trainer`` (Lightning
``Trainer`` arguments), ``detector`` (:class:`~lhcml.anomaly.scores.AnomalyDetector`
arguments bar the networks), ``nae`` (``model``: :class:`~lhcml.anomaly.model.
NormalizedAutoencoder` arguments, ``fit``: :func:`~lhcml.anomaly.scores.fit_nae`
arguments).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from lhcml.anomaly.augment import Pipeline
from lhcml.anomaly.data import PT_SCALE, ConstituentJets, read_constituent_splits
from lhcml.anomaly.losses import get_loss, norm_penalty
from lhcml.anomaly.model import JetEncoder, NormalizedAutoencoder
from lhcml.anomaly.scores import AnomalyDetector, fit_nae
from lhcml.errors import ConfigError
from lhcml.io.atomic import write_json_atomic, write_text_atomic
from lhcml.jets.training import (
    build,
    dotted_overrides,
    lightning_quiet,
    read_yaml,
    save_weights,
)

SECTIONS = frozenset(
    {
        "name",
        "seed",
        "primary_score",
        "data",
        "augmentations",
        "model",
        "module",
        "trainer",
        "detector",
        "nae",
    }
)
DEFAULT_PHYSICAL: tuple[Any, ...] = ("rotate", {"name": "translate", "width": 1.0})
DEFAULT_ANOMALOUS: tuple[Any, ...] = ({"name": "drop", "prob": 0.5},)


@dataclass
class DataConfig:
    """The ``data`` section.

    Attributes:
        background: background (QCD) sample directories: the training jets.
        contamination: signal sample directories mixed into the training set (what a
            real search on data has); their train split only.
        contamination_fraction: signal jets added, as a fraction of the background jets.
        n_constituents: constituents per jet.
        pt_scale: constituent pT divisor [GeV].
        fractions: ``(train, val, test)`` split fractions (by event hash).
        max_train_jets: cap of background training jets (None: all).
        batch_size: training batch size.
        eval_batch_size: batch size of validation and inference.
    """

    background: list[str] = field(default_factory=list)
    contamination: list[str] = field(default_factory=list)
    contamination_fraction: float = 0.0
    n_constituents: int = 50
    pt_scale: float = PT_SCALE
    fractions: Sequence[float] = (0.6, 0.1, 0.3)
    max_train_jets: int | None = None
    batch_size: int = 256
    eval_batch_size: int = 2048

    def __post_init__(self) -> None:
        if isinstance(self.background, str):
            self.background = [self.background]
        if isinstance(self.contamination, str):
            self.contamination = [self.contamination]
        if not self.background:
            raise ConfigError("data.background: at least one background sample directory is needed")
        if not 0 <= self.contamination_fraction < 1:
            raise ConfigError(
                f"data.contamination_fraction: must be in [0, 1), got {self.contamination_fraction}"
            )
        if self.contamination_fraction > 0 and not self.contamination:
            raise ConfigError("data.contamination_fraction > 0 needs data.contamination samples")
        if self.batch_size < 2:
            raise ConfigError(f"data.batch_size: must be >= 2, got {self.batch_size}")

    def read(
        self, paths: Sequence[str], split: str | None, max_jets: int | None, what: str
    ) -> ConstituentJets:
        (jets,) = self.read_splits(paths, [(split, max_jets)], what)
        return jets

    def read_splits(
        self, paths: Sequence[str], splits: Sequence[tuple[str | None, int | None]], what: str
    ) -> list[ConstituentJets]:
        """Several ``(split, max_jets)`` of the same samples, the files read once."""
        return read_constituent_splits(
            paths,
            splits,
            n_constituents=self.n_constituents,
            pt_scale=self.pt_scale,
            fractions=self.fractions,
            what=what,
        )

    def training_jets(self) -> tuple[ConstituentJets, ConstituentJets]:
        """``(train, val)``: the background train split (+ contamination) and the
        background val split."""
        bkg, val = self.read_splits(
            self.background, [("train", self.max_train_jets), ("val", None)], "background"
        )
        if self.contamination_fraction <= 0:
            return bkg, val
        n_sig = max(1, round(self.contamination_fraction * len(bkg)))
        sig = self.read(self.contamination, "train", None, "contamination")
        if len(sig) < n_sig:
            raise ConfigError(
                f"data.contamination_fraction: {n_sig} signal jets wanted, {len(sig)} in the "
                "contamination samples' train split"
            )
        return ConstituentJets.concat([bkg, sig.take(np.arange(n_sig))]), val


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and check an anomaly experiment YAML (``yaml.safe_load``)."""
    return check_config(read_yaml(path), str(path))


def check_config(cfg: Any, where: str = "config") -> dict[str, Any]:
    """Check the sections of an anomaly config; return it."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of sections")
    unknown = set(cfg) - SECTIONS
    if unknown:
        raise ConfigError(f"{where}: unknown sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
    for key in ("data", "augmentations", "model", "module", "trainer", "detector", "nae"):
        if not isinstance(cfg.get(key, {}), dict):
            raise ConfigError(f"{where}: section '{key}' must be a mapping")
    aug = cfg.get("augmentations", {})
    if set(aug) - {"physical", "anomalous"}:
        raise ConfigError(f"{where}: augmentations takes 'physical' and 'anomalous' lists")
    if set(cfg.get("nae", {})) - {"model", "fit"}:
        raise ConfigError(f"{where}: nae takes 'model' and 'fit' mappings")
    return cfg


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``cfg`` with ``{"section.key": value}`` overrides (None skipped),
    checked."""
    return check_config(dotted_overrides(cfg, overrides))


class _Batches:
    """Shuffled (or fixed) batches of padded jets, each cut to its longest jet."""

    def __init__(self, x: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> None:
        self.x, self.batch_size, self.shuffle, self.seed = x, batch_size, shuffle, seed
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.x) // self.batch_size if self.shuffle else -(-len(self.x) // self.batch_size)
        return max(n, 1)

    def __iter__(self) -> Any:
        n = len(self.x)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
            order = order[: len(self) * self.batch_size]  # equal batches (in-batch negatives)
        else:
            order = np.arange(n)
        self.epoch += 1
        for i in range(0, len(order), self.batch_size):
            xb = self.x[order[i : i + self.batch_size]]
            longest = max(int((xb[:, :, 0] > 0).sum(1).max()), 1)
            yield torch.from_numpy(np.ascontiguousarray(xb[:, :longest]))


class ContrastiveModule(L.LightningModule):
    """Thin Lightning wrapper of DarkCLR training: three views per batch (original,
    physical, anomalous), a contrastive loss, Adam.

    Args:
        encoder: the :class:`~lhcml.anomaly.model.JetEncoder`.
        physical, anomalous: the augmentation pipelines.
        loss: a name of :data:`lhcml.anomaly.losses.LOSSES`.
        temperature: of the loss.
        norm_penalty: weight of the output-norm penalty (1e-3 in the reference).
        lr, eps: Adam's (reference: 5e-5, 1e-4).
        loss_kwargs: extra loss arguments (e.g. ``margin`` of ``vicreg_anom``).
    """

    def __init__(
        self,
        encoder: JetEncoder,
        physical: Pipeline,
        anomalous: Pipeline,
        loss: str = "anomclr_plus",
        temperature: float = 0.1,
        norm_penalty: float = 1e-3,
        lr: float = 5e-5,
        eps: float = 1e-4,
        loss_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder, self.physical, self.anomalous = encoder, physical, anomalous
        self.loss_fn = get_loss(loss)
        self.temperature, self.penalty = float(temperature), float(norm_penalty)
        self.lr, self.eps = float(lr), float(eps)
        self.loss_kwargs = dict(loss_kwargs or {})
        self.history: list[dict[str, float]] = []
        self._sums: dict[str, list[float]] = {"train": [0.0, 0], "val": [0.0, 0]}
        self._t0 = 0.0
        self.train_seconds = 0.0
        self.train_jets = 0

    def _loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        views = torch.cat([x, self.physical(x, generator), self.anomalous(x, generator)])
        out = self.encoder(views)
        z, zp, za = out.chunk(3)
        loss = self.loss_fn(z, zp, za, temperature=self.temperature, **self.loss_kwargs)
        return loss + self.penalty * norm_penalty(z, zp, za)

    def on_train_epoch_start(self) -> None:
        self._t0 = time.perf_counter()

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self._sums["train"][0] += float(loss.detach()) * len(batch)
        self._sums["train"][1] += len(batch)
        self.train_jets += len(batch)
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        # Fixed augmentations, so epochs compare.
        g = torch.Generator(device=batch.device).manual_seed(1000 + batch_idx)
        loss = self._loss(batch, g)
        self._sums["val"][0] += float(loss) * len(batch)
        self._sums["val"][1] += len(batch)

    def on_train_epoch_end(self) -> None:
        self.train_seconds += time.perf_counter() - self._t0
        row = {"epoch": float(self.current_epoch)}
        for k, (s, n) in self._sums.items():
            if n:
                row[f"{k}_loss"] = s / n
            self._sums[k] = [0.0, 0]
        row["seconds"] = self.train_seconds
        self.history.append(row)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.encoder.parameters(), lr=self.lr, eps=self.eps)


@torch.no_grad()
def embed_jets(
    encoder: JetEncoder, x: np.ndarray, batch_size: int = 2048, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h, z)`` of padded jets ``x``, in batches (eval mode), on the CPU."""
    encoder.eval()
    hs, zs = [], []
    for xb in _Batches(x, batch_size, shuffle=False, seed=0):
        h = encoder.represent(xb.to(device))  # mask: pT > 0
        hs.append(h.cpu())
        zs.append(encoder.head(h).cpu())
    return torch.cat(hs), torch.cat(zs)


def build_detector(cfg: dict[str, Any]) -> AnomalyDetector:
    """An untrained :class:`AnomalyDetector` of a config (the architecture only)."""
    encoder = build(JetEncoder, cfg.get("model", {}), "model")
    nae_kwargs = {"input_dim": encoder.model_dim, **cfg.get("nae", {}).get("model", {})}
    nae = build(NormalizedAutoencoder, nae_kwargs, "nae.model")
    det_kwargs = {"temperature": cfg.get("module", {}).get("temperature", 0.1)}
    det_kwargs.update(cfg.get("detector", {}))
    return build(AnomalyDetector, {"encoder": encoder, "nae": nae, **det_kwargs}, "detector")


def train(
    cfg: dict[str, Any], out_dir: str | Path, *, device: str = "cpu", progress: bool = True
) -> dict[str, Any]:
    """Train the experiment ``cfg`` (checked by :func:`check_config`) into ``out_dir``.

    Returns:
        The training summary written into ``history.json`` (epochs, NAE losses, times).
    """
    import yaml

    from lhcml._device import trainer_device

    cfg = check_config(copy.deepcopy(cfg))
    seed = int(cfg.get("seed", 42))
    L.seed_everything(seed, workers=True, verbose=False)
    data = build(DataConfig, cfg.get("data", {}), "data")
    aug = cfg.get("augmentations", {})
    physical = Pipeline(aug.get("physical", DEFAULT_PHYSICAL), "augmentations.physical")
    anomalous = Pipeline(aug.get("anomalous", DEFAULT_ANOMALOUS), "augmentations.anomalous")
    detector = build_detector(cfg)
    train_jets, val_jets = data.training_jets()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))

    module = build(
        ContrastiveModule,
        {
            "encoder": detector.encoder,
            "physical": physical,
            "anomalous": anomalous,
            **cfg.get("module", {}),
        },
        "module",
    )
    trainer_kwargs = {
        "max_epochs": 5,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": progress,
        "num_sanity_val_steps": 0,
        "default_root_dir": str(out),
        **trainer_device(device),
        **cfg.get("trainer", {}),
    }
    train_loader = _Batches(train_jets.x, data.batch_size, shuffle=True, seed=seed)
    val_loader = _Batches(val_jets.x[: 4 * data.eval_batch_size], data.batch_size, False, seed)
    t0 = time.perf_counter()
    with lightning_quiet(not progress):
        trainer = build(L.Trainer, trainer_kwargs, "trainer")
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    encoder_seconds = time.perf_counter() - t0

    # Density estimators on the background representations (no augmentation).
    detector.cpu()
    t1 = time.perf_counter()
    h, z = embed_jets(detector.encoder, train_jets.x, data.eval_batch_size)
    g = torch.Generator().manual_seed(seed)
    detector.fit_banks(h, z, g)
    nae_hist = fit_nae(
        detector.nae, detector.standardise(h), seed=seed, **cfg.get("nae", {}).get("fit", {})
    )
    detector_seconds = time.perf_counter() - t1
    save_weights(detector, out / "weights.pt")
    summary = {
        "name": cfg.get("name", out.name),
        "epochs": module.history,
        "nae": nae_hist,
        "n_train": len(train_jets),
        "n_val": len(val_jets),
        "encoder_seconds": encoder_seconds,
        "detector_seconds": detector_seconds,
        "train_jets_per_s": module.train_jets / max(module.train_seconds, 1e-9),
        "parameters": sum(p.numel() for p in detector.encoder.parameters()),
        "device": device,
    }
    write_json_atomic(out / "history.json", summary)
    return summary


def load_detector(model_dir: str | Path) -> tuple[AnomalyDetector, dict[str, Any]]:
    """The trained detector of a model directory (``weights_only`` load) and its config.

    Raises:
        InputError: a missing or unreadable ``config.yaml`` / ``weights.pt``.
    """
    from lhcml.errors import InputError

    d = Path(model_dir)
    for name in ("config.yaml", "weights.pt"):
        if not (d / name).is_file():
            raise InputError(f"not an anomaly model directory: no {name}", path=d)
    cfg = load_config(d / "config.yaml")
    detector = build_detector(cfg)
    try:
        state = torch.load(d / "weights.pt", map_location="cpu", weights_only=True)
        detector.load_state_dict(state)
    except (RuntimeError, OSError) as e:
        raise InputError(f"weights do not match the config: {e}", path=d / "weights.pt") from e
    detector.eval()
    return detector, cfg
