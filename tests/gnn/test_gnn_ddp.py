"""Lightning DDP on 2 CPU processes (gloo) for the edge classifier: it trains, and its
loss follows the single-process run with the same effective batch."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lhcml.gnn.chain import train_chain
from lhcml.gnn.config import load_config
from lhcml.gnn.edge_classification.train import edge_classifier_train

TINY = Path(__file__).resolve().parents[2] / "experiments" / "gnn" / "tiny.yaml"


def _epoch_losses(run_dir: Path) -> list[float]:
    with (run_dir / "logs" / "version_0" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    return [float(r["train_loss_epoch"]) for r in rows if r.get("train_loss_epoch")]


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(tmp_path: Path) -> None:
    import torch

    chain = tmp_path / "chain"
    train_chain(load_config(TINY), chain, progress=False, until="edge_filter", log=lambda _: None)
    graphs = tmp_path / "chain" / "edge_filter" / "graphs"
    config = {
        "threshold": 0.5,
        "model": {"hidden": 16, "n_iterations": 2, "n_layers": 2},
        "training": {"lr": 0.003},
    }
    runs = {
        # Two processes average two graphs' gradients per step: one process accumulating
        # two batches takes the same steps.
        "single": {"max_epochs": 6, "accumulate_grad_batches": 2},
        "ddp": {"max_epochs": 6, "devices": 2, "strategy": "ddp_spawn"},
    }
    results = {}
    for name, trainer in runs.items():
        torch.manual_seed(0)
        out = tmp_path / name / "edge_classifier.pt"
        results[name] = edge_classifier_train(
            graphs / "train", graphs / "val", out, {**config, "trainer": trainer}, progress=False
        )
        assert out.is_file()  # the weights come back to the main process
    single, ddp = (_epoch_losses(tmp_path / n) for n in runs)
    assert len(single) == len(ddp) == 6
    assert ddp[-1] < 0.95 * ddp[0]  # it trains
    for a, b in zip(single, ddp, strict=True):
        assert abs(a - b) / a < 0.05
    assert abs(results["ddp"]["val"]["efficiency"] - results["single"]["val"]["efficiency"]) < 0.1
