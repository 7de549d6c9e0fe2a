"""Every experiments/gnn config builds its classes (keys are their __init__ arguments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhcml.errors import ConfigError
from lhcml.gnn.chain import train_chain
from lhcml.gnn.config import load_config, target_selection
from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
from lhcml.gnn.edge_filter import EdgeFilter
from lhcml.gnn.graph_construction.metric_learning import MetricLearning
from lhcml.gnn.graph_construction.module_map import ModuleMap
from lhcml.gnn.lightning import EdgeClassifierModule, EdgeFilterModule, MetricLearningModule
from lhcml.gnn.runtime import make_trainer
from lhcml.gnn.track_building import METHODS
from lhcml.simulation import SimulationConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "gnn").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_every_class(path: Path) -> None:
    from lhcml.gnn.augment import subset_config

    cfg = load_config(path)
    root = Path(__file__).resolve().parents[2]
    for name, spec in cfg["samples"].items():
        if "from" in spec:  # a derived sample (lhcml.gnn.augment)
            assert spec["from"] in cfg["samples"], name
            subset_config(spec["subset"], seed=0, where=f"samples.{name}.subset")
        else:
            SimulationConfig.from_dict(spec["simulation"]).validate()
    assert set(cfg["splits"]) == {"train", "val", "test"}
    train = cfg["splits"]["train"]
    assert set(train if isinstance(train, list) else [train]) <= set(cfg["samples"])
    target_selection(cfg)
    if cfg.get("target_train"):
        target_selection({"target": cfg["target_train"]})
    for stage in ("module_map", "metric_learning"):
        if "from" in cfg[stage]:  # copied from a model set in the repo
            assert (root / cfg[stage]["from"] / "chain.yaml").is_file(), stage
    if "params" in cfg["module_map"]:
        ModuleMap(**cfg["module_map"]["params"])
    ml = cfg["metric_learning"]
    if "model" in ml:
        MetricLearningModule(MetricLearning(**ml["model"]), **ml["training"])
    ef = cfg["edge_filter"]
    if ef.get("enabled", True):
        EdgeFilterModule(EdgeFilter(**ef["model"]), **ef["training"])
    ec = cfg["edge_classifier"]
    EdgeClassifierModule(InteractionNetwork(**ec["model"]), **ec["training"])
    if ec.get("init_from"):
        assert (root / ec["init_from"]).is_file()
    assert cfg["track_building"]["method"] in METHODS
    trainer = make_trainer(ec["trainer"], Path("/nonexistent"), progress=False)
    assert trainer.max_epochs == ec["trainer"]["max_epochs"]


def test_bad_sections_name_the_option(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="target"):
        target_selection({"target": {"pt_minimum": 1}})
    with pytest.raises(ConfigError, match="until"):
        train_chain({}, tmp_path, until="everything")
