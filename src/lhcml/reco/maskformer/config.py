"""The MaskFormer experiment config (one YAML file; section keys are ``__init__`` arguments).

Sections: ``filter`` (:class:`~lhcml.reco.maskformer.model.HitFilter`), ``tracker``
(:class:`~lhcml.reco.maskformer.model.MaskFormer`), ``wedges`` (:class:`WedgeConfig`),
``loss`` (:class:`~lhcml.reco.maskformer.matching.LossWeights`), ``inference``
(:class:`InferenceConfig`), ``train_filter`` / ``train_tracker`` (:class:`StageTraining`),
``data`` (:class:`DataConfig`). Read with ``yaml.safe_load``; unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhcml.errors import ConfigError
from lhcml.reco.maskformer.matching import LossWeights


@dataclass(frozen=True)
class WedgeConfig:
    """Azimuth wedges of the tracker (:func:`lhcml.reco.maskformer.data.wedges`).

    Args:
        n_wedges: cores tiling the circle.
        margin: widening of each core on both sides [rad] (>= 0.31 holds a whole
            pT > 1 GeV track).
    """

    n_wedges: int = 16
    margin: float = 0.35


@dataclass(frozen=True)
class InferenceConfig:
    """Cuts of the finder.

    Args:
        filter_cut: hit-filter probability to keep a hit (set at training time to reach
            ``train_filter.target_efficiency`` on the validation events).
        track_cut: query class probability to be a track.
        mask_cut: mask probability for a hit to join a track.
        min_hits: shortest track kept.
        max_hits: most hits of one wedge after the filter; more is refused, not truncated.
    """

    filter_cut: float = 0.5
    track_cut: float = 0.5
    mask_cut: float = 0.5
    min_hits: int = 3
    max_hits: int = 20000


@dataclass(frozen=True)
class StageTraining:
    """Training of one network.

    Args:
        epochs: passes over the training inputs.
        lr: AdamW peak learning rate (one-cycle cosine schedule).
        weight_decay: AdamW weight decay.
        samples_per_event: random inputs drawn per event and epoch (filter: phi slices;
            tracker: wedges at random azimuths).
        slice_hits: filter: hits per training slice (contiguous in phi).
        accumulate: gradient accumulation steps.
        max_minutes: wall-clock stop (``None``: none).
        target_efficiency: filter: the cut keeps this share of target hits on the
            validation events.
    """

    epochs: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-5
    samples_per_event: int = 4
    slice_hits: int = 16384
    accumulate: int = 1
    max_minutes: float | None = None
    target_efficiency: float = 0.98


@dataclass(frozen=True)
class DataConfig:
    """Events for training (relative paths: to the working directory).

    Args:
        train: directory of simulated training events.
        val: directory of validation events.
        max_train: at most this many training events (``None``: all).
        max_val: at most this many validation events.
        tracker_hits: the tracker trains on the hits the trained filter keeps
            (``filter``, as it runs) or on the target particles' hits (``truth``: an
            ideal filter; the ablation that separates filter from tracker errors).
    """

    train: str = "data/maskformer/train"
    val: str = "data/maskformer/val"
    max_train: int | None = None
    max_val: int | None = 2
    tracker_hits: str = "filter"


@dataclass(frozen=True)
class MaskFormerConfig:
    """The whole experiment (see the module docstring for the sections)."""

    filter: dict[str, Any] = field(default_factory=dict)
    tracker: dict[str, Any] = field(default_factory=dict)
    wedges: WedgeConfig = field(default_factory=WedgeConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    train_filter: StageTraining = field(default_factory=StageTraining)
    train_tracker: StageTraining = field(default_factory=StageTraining)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS: dict[str, type] = {
    "wedges": WedgeConfig,
    "loss": LossWeights,
    "inference": InferenceConfig,
    "train_filter": StageTraining,
    "train_tracker": StageTraining,
    "data": DataConfig,
}


def _check_init_keys(section: str, values: dict[str, Any], cls: type) -> None:
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "in_features"}
    unknown = sorted(set(values) - params)
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {unknown}; expected some of {sorted(params)}")


def config_from_dict(cfg: Any, where: str = "config") -> MaskFormerConfig:
    """Check a config mapping and build the :class:`MaskFormerConfig`.

    Raises:
        ConfigError: not a mapping, an unknown section or key, a bad value.
    """
    from lhcml.reco.maskformer.model import HitFilter, MaskFormer

    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of sections")
    known = {f.name for f in dataclasses.fields(MaskFormerConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; expected {sorted(known)}")

    def section(name: str) -> dict[str, Any]:
        values = cfg.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: section '{name}' must be a mapping")
        return values

    kwargs: dict[str, Any] = {}
    for name in ("filter", "tracker"):
        values = section(name)
        _check_init_keys(f"{where}: {name}", values, HitFilter if name == "filter" else MaskFormer)
        kwargs[name] = dict(values)
    for name, cls in _SECTIONS.items():
        values = section(name)
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(values) - fields)
        if bad:
            raise ConfigError(f"{where}: {name}: unknown key(s) {bad}; expected {sorted(fields)}")
        kwargs[name] = cls(**values)
    if "seed" in cfg:
        kwargs["seed"] = int(cfg["seed"])
    out = MaskFormerConfig(**kwargs)
    if out.wedges.n_wedges < 1 or out.wedges.margin < 0:
        raise ConfigError(f"{where}: wedges: n_wedges >= 1 and margin >= 0 required")
    if out.data.tracker_hits not in ("filter", "truth"):
        raise ConfigError(f"{where}: data.tracker_hits must be 'filter' or 'truth'")
    if out.inference.max_hits < 1:
        raise ConfigError(f"{where}: inference.max_hits must be >= 1")
    return out


def load_config(path: str | Path) -> MaskFormerConfig:
    """Read a MaskFormer YAML config.

    Raises:
        ConfigError: missing or invalid file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    return config_from_dict(raw, str(path))
