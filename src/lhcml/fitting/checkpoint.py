"""TrackFormer experiment configs and trained-model folders: reading and checking the YAML
(:func:`load_config`), loading a run directory written by :func:`lhcml.fitting.train.train`
(:func:`load_model`). Training and evaluation both build on this module, never on each
other's.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from lhcml.errors import ConfigError, InputError
from lhcml.fitting.dataset import FeatureConfig
from lhcml.fitting.losses import LOSSES

_SECTIONS = ("model", "features", "loss", "optim", "training", "data")
_TRAINING_KEYS = {
    "batch_size",
    "max_epochs",
    "max_minutes",
    "seed",
    "threads",
    "max_tokens",
    "init_from",
    "train_only",
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and check an experiment YAML file (``yaml.safe_load``).

    Raises:
        ConfigError: unreadable file, unknown section or bad values.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of sections {list(_SECTIONS)}")
    return check_config(cfg, base=path.parent)


def check_config(cfg: dict[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Validate an experiment config dict and fill defaults; returns a new dict."""
    cfg = copy.deepcopy(cfg)
    unknown = sorted(set(cfg) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"config: unknown section(s) {unknown}; expected {list(_SECTIONS)}")
    cfg.setdefault("model", {})
    cfg.setdefault("features", {})
    cfg.setdefault("loss", "gnll")
    cfg.setdefault("optim", {})
    cfg.setdefault("training", {})
    cfg.setdefault("data", {})
    if cfg["loss"] not in LOSSES:
        raise ConfigError(f"loss: '{cfg['loss']}' not one of {list(LOSSES)}")
    try:
        FeatureConfig(**cfg["features"]).validate()
    except TypeError as e:
        raise ConfigError(f"features: {e}") from None
    bad = sorted(set(cfg["training"]) - _TRAINING_KEYS)
    if bad:
        raise ConfigError(f"training: unknown key(s) {bad}; expected {sorted(_TRAINING_KEYS)}")
    bad = sorted(set(cfg["optim"]) - {"lr", "weight_decay", "candidate_weight", "hit_weight"})
    if bad:
        raise ConfigError(f"optim: unknown key(s) {bad}")
    data = cfg["data"]
    for key in ("train", "val"):
        files = data.get(key, [])
        if isinstance(files, str):
            files = [files]
        if base is not None:
            files = [
                str(f if Path(f).is_absolute() or Path(f).exists() else base / f) for f in files
            ]
        data[key] = files
    init = cfg["training"].get("init_from")
    if init is not None and base is not None and not Path(init).exists():
        cfg["training"]["init_from"] = str(base / init)
    only = cfg["training"].get("train_only")
    if only is not None and (
        not isinstance(only, list) or not all(isinstance(x, str) for x in only) or not only
    ):
        raise ConfigError("training.train_only: a non-empty list of parameter name prefixes")
    if data.get("regress_on", "pure") not in ("pure", "real"):
        raise ConfigError("data.regress_on: must be 'pure' or 'real'")
    return cfg


def load_model(run_dir: str | Path) -> tuple[Any, FeatureConfig, str]:
    """Load a trained model: ``(TrackFormer in eval mode, FeatureConfig, loss name)``.

    Raises:
        InputError: missing files.
    """
    import torch

    from lhcml.fitting.losses import outputs_per_parameter
    from lhcml.fitting.trackformer import TrackFormer

    run_dir = Path(run_dir)
    for name in ("model.pt", "config.yaml"):
        if not (run_dir / name).is_file():
            raise InputError(f"not a trained model directory: {name} missing", path=run_dir)
    cfg = load_config(run_dir / "config.yaml")
    feat = FeatureConfig(**cfg["features"]).validate()
    model = TrackFormer(
        n_hit_features=feat.n_hit_features,
        n_global_features=feat.n_global_features,
        outputs_per_param=outputs_per_parameter(cfg["loss"]),
        **cfg["model"],
    )
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval(), feat, cfg["loss"]
