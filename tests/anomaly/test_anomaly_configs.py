"""Every committed anomaly config loads and builds; bad configs fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhcml.anomaly.augment import Pipeline
from lhcml.anomaly.losses import get_loss
from lhcml.anomaly.train import (
    DataConfig,
    apply_overrides,
    build_detector,
    check_config,
    load_config,
)
from lhcml.errors import ConfigError

CONFIGS = sorted(
    (Path(__file__).resolve().parents[2] / "experiments" / "anomaly").glob("darkclr*.yaml")
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds(path: Path) -> None:
    cfg = load_config(path)
    det = build_detector(cfg)
    assert det.encoder.model_dim == cfg["model"]["model_dim"]
    DataConfig(**cfg["data"])
    for key in ("physical", "anomalous"):
        assert len(Pipeline(cfg["augmentations"][key])) >= 1
    get_loss(cfg["module"]["loss"])


def test_bad_configs_name_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown sections"):
        check_config({"modle": {}})
    with pytest.raises(ConfigError, match=r"data\.background"):
        DataConfig(background=[])
    with pytest.raises(ConfigError, match="contamination"):
        DataConfig(background=["a"], contamination_fraction=0.1)
    with pytest.raises(ConfigError, match="model:"):
        build_detector({"model": {"width": 3}})
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        build_detector({"model": {"model_dim": 10, "n_heads": 4}})
    cfg = apply_overrides({"data": {"background": ["a"]}}, {"data.max_train_jets": 5, "seed": None})
    assert cfg["data"]["max_train_jets"] == 5 and "seed" not in cfg
