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
    cfg = load_config(path)
    for spec in cfg["samples"].values():
        SimulationConfig.from_dict(spec["simulation"]).validate()
    assert set(cfg["splits"]) == {"train", "val", "test"}
    target_selection(cfg)
    ModuleMap(**cfg["module_map"]["params"])
    ml = cfg["metric_learning"]
    MetricLearningModule(MetricLearning(**ml["model"]), **ml["training"])
    ef = cfg["edge_filter"]
    EdgeFilterModule(EdgeFilter(**ef["model"]), **ef["training"])
    ec = cfg["edge_classifier"]
    EdgeClassifierModule(InteractionNetwork(**ec["model"]), **ec["training"])
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
