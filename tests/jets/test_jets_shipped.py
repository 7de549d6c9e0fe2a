"""The shipped top-vs-QCD ParT: small, loadable, and its stored metrics reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run

from lhcml.jets.dataset import read_jets
from lhcml.jets.evaluation import classification_metrics, predict
from lhcml.jets.models import SHIPPED_MODEL_DIR
from lhcml.jets.training import load_model


def test_shipped_files_small_and_loadable() -> None:
    files = {p.name: p.stat().st_size for p in SHIPPED_MODEL_DIR.iterdir()}
    for name in ("config.yaml", "weights.pt", "metrics.json"):
        assert name in files
    assert sum(files.values()) < 5 * 1024**2
    state = torch.load(SHIPPED_MODEL_DIR / "weights.pt", weights_only=True)
    model, cfg = load_model(SHIPPED_MODEL_DIR)
    assert cfg["model_type"] == "part" and cfg["data"]["classes"] == ["qcd", "top"]
    assert sum(v.numel() for v in state.values()) >= sum(p.numel() for p in model.parameters())
    metrics = json.loads((SHIPPED_MODEL_DIR / "metrics.json").read_text())
    assert metrics["n_jets"] > 1000 and 0.5 < metrics["auc"] <= 1.0
    assert metrics["rejection_50"] > metrics["rejection_30"] / 10


def test_shipped_metrics_match_a_fresh_sample(samples: dict[str, Path]) -> None:
    """Re-evaluate on the session's small sample (seed 11; the model saw seed 42)."""
    model, cfg = load_model(SHIPPED_MODEL_DIR)
    stored = json.loads((SHIPPED_MODEL_DIR / "metrics.json").read_text())
    data = read_jets(
        [samples["qcd"], samples["top"]],
        ("qcd", "top"),
        max_particles=cfg["data"]["max_particles"],
    )
    probs, _ = predict(model, data)
    fresh = classification_metrics(data.labels, probs, data.classes)
    # ~40 top and ~75 QCD jets: statistical spread of a few percent.
    assert fresh["auc"] == pytest.approx(stored["auc"], abs=0.06)
    assert fresh["accuracy"] == pytest.approx(stored["accuracy"], abs=0.12)
    r = run(
        "jets",
        "evaluate",
        "shipped",
        "--data",
        str(samples["qcd"]),
        "--data",
        str(samples["top"]),
        "--split",
        "all",
    )
    assert r.exit_code == 0, r.output
