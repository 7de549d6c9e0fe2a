"""Lightning DDP on 2 CPU processes (gloo) for the Particle Transformer: the batch sampler
shards the batches, the epoch loss is over both processes' jets, the history and the
weights come back from the spawned processes, and the loss follows one process with the
same effective batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXPERIMENTS

from lhcml.jets.dataset import LengthBucketSampler
from lhcml.jets.training import apply_overrides, load_config, train


def test_sampler_shards_are_disjoint_and_equal() -> None:
    lengths = np.random.default_rng(0).integers(5, 60, size=203)
    whole = LengthBucketSampler(lengths, 10, seed=3, pool_batches=4)
    # 203 jets, pools of 40: 5 full pools of 4 batches and one of 3 jets -> 21 batches.
    assert len(whole) == len(list(whole)) == 21
    shards = [
        LengthBucketSampler(lengths, 10, seed=3, pool_batches=4, rank=r, world_size=2)
        for r in (0, 1)
    ]
    got = [list(s) for s in shards]
    assert [len(g) for g in got] == [len(s) for s in shards] == [10, 10]
    jets = [{j for b in g for j in b} for g in got]
    assert not jets[0] & jets[1]
    # The shards are the first 20 batches of the same epoch, interleaved.
    reference = LengthBucketSampler(lengths, 10, seed=3, pool_batches=4).batches(0)
    assert got[0] == [b.tolist() for b in reference[0:20:2]]
    with pytest.raises(ValueError, match="rank 2"):
        LengthBucketSampler(lengths, 10, rank=2, world_size=2)


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(samples: dict[str, Path], tmp_path: Path) -> None:
    base = apply_overrides(
        load_config(EXPERIMENTS / "tiny.yaml"),
        {
            "data.paths": [str(samples["qcd"]), str(samples["top"])],
            "data.pool_batches": 1,
            # 20 + 20 training jets in 4 batches: 2 per process, none left over.
            "data.max_jets_per_class": 20,
            "data.batch_size": 10,
            "trainer.max_epochs": 4,
            # No dropout: its masks come from each process's own random stream.
            "model.dropout": 0.0,
            "model.attn_dropout": 0.0,
            "model.activation_dropout": 0.0,
        },
    )
    runs = {
        # Two processes average two batches' gradients per step; one process accumulating
        # two consecutive batches takes the same steps on the same jets.
        "single": {"trainer.accumulate_grad_batches": 2},
        "ddp": {"trainer.devices": 2, "trainer.strategy": "ddp_spawn"},
    }
    metrics = {}
    for name, overrides in runs.items():
        torch.manual_seed(0)
        metrics[name] = train(apply_overrides(base, overrides), tmp_path / name, progress=False)
    single, ddp = (json.loads((tmp_path / n / "history.json").read_text()) for n in runs)
    assert len(single) == len(ddp) == 4 == metrics["ddp"]["epochs"]
    assert ddp[-1]["train_loss"] < 0.95 * ddp[0]["train_loss"]  # it trains
    for a, b in zip(single, ddp, strict=True):
        # Same steps on the same jets (the gradients average exactly as accumulation does).
        assert abs(a["train_loss"] - b["train_loss"]) / a["train_loss"] < 1e-3
        # The pair embedding's batch-norm running statistics are rank 0's (DDP broadcasts
        # its buffers; they saw half the batches), so validation differs a little.
        assert abs(a["val_loss"] - b["val_loss"]) / a["val_loss"] < 0.1
    assert abs(metrics["ddp"]["auc"] - metrics["single"]["auc"]) < 0.05
    assert metrics["ddp"]["train_jets_per_s"] > 0
