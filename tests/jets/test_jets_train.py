"""End to end: lhcml jets train / evaluate on tiny samples, baselines, metrics by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXPERIMENTS, run

from lhcml.jets.dataset import read_jets
from lhcml.jets.evaluation import binary_metrics, classification_metrics, predict
from lhcml.jets.training import load_model


def test_binary_metrics_by_hand() -> None:
    # 10 signal jets with scores 10..19; 10 background jets: one above 14.5, the rest low.
    labels = np.array([1] * 10 + [0] * 10)
    score = np.array(list(range(10, 20)) + [15.5] + [0] * 9, dtype=float)
    m = binary_metrics(labels, score)
    # eps_S = 0.5 (scores >= 15): eps_B = 1/10 -> rejection 10; eps_S = 0.3: eps_B = 0.
    assert m["rejection_50"] == pytest.approx(10.0)
    assert m["rejection_30"] == math.inf
    assert m["auc"] == pytest.approx(1 - 6 / 100)  # 6 signal jets (10..15) below 15.5
    probs = np.column_stack([1 - score / 20, score / 20])
    c = classification_metrics(labels, probs, ("qcd", "top"))
    assert c["accuracy"] == pytest.approx(np.mean((score / 20 > 0.5) == labels))
    assert c["auc"] == pytest.approx(m["auc"])


def test_train_and_evaluate_tiny_part(samples: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "part"
    r = run(
        "jets",
        "train",
        str(EXPERIMENTS / "tiny.yaml"),
        "--out",
        str(out),
        "--data",
        str(samples["qcd"]),
        "--data",
        str(samples["top"]),
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    for name in ("config.yaml", "weights.pt", "metrics.json", "history.json", "roc.png"):
        assert (out / name).is_file(), name
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and all(h["train_loss"] > 0 for h in history)
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["auc"] <= 1
    assert metrics["train_jets_per_s"] > 0 and metrics["infer_jets_per_s"] > 0
    state = torch.load(out / "weights.pt", weights_only=True)
    assert "pair_embed.embed.1.weight" in state
    # evaluate on every jet: equals a hand computation with the loaded model.
    ev = tmp_path / "eval"
    r = run(
        "jets",
        "evaluate",
        str(out),
        "--data",
        str(samples["qcd"]),
        "--data",
        str(samples["top"]),
        "--split",
        "all",
        "--out",
        str(ev),
    )
    assert r.exit_code == 0, r.output
    got = json.loads((ev / "metrics.json").read_text())
    model, _cfg = load_model(out)
    data = read_jets([samples["qcd"], samples["top"]], ("qcd", "top"), max_particles=64)
    probs, _ = predict(model, data)
    want = binary_metrics(data.labels, probs[:, 1])
    assert got["n_jets"] == len(data)
    assert got["auc"] == pytest.approx(want["auc"], abs=1e-6)


def test_baselines_train(samples: dict[str, Path], tmp_path: Path) -> None:
    data = ["--data", str(samples["qcd"]), "--data", str(samples["top"])]
    r = run("jets", "train", str(EXPERIMENTS / "bdt.yaml"), "--out", str(tmp_path / "bdt"), *data)
    assert r.exit_code == 0, r.output
    ev = run(
        "jets",
        "evaluate",
        str(tmp_path / "bdt"),
        *data,
        "--split",
        "all",
        "--out",
        str(tmp_path / "bdt-all"),
    )
    assert ev.exit_code == 0, ev.output
    # Soft-drop mass and tau_32 separate top from QCD jets almost perfectly.
    assert json.loads((tmp_path / "bdt-all" / "metrics.json").read_text())["auc"] > 0.9
    r = run(
        "jets",
        "train",
        str(EXPERIMENTS / "pfn.yaml"),
        "--out",
        str(tmp_path / "pfn"),
        *data,
        "--epochs",
        "1",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "pfn" / "metrics.json").read_text())["epochs"] == 1


def test_user_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_type: part\nmodel: {embed_dimz: [8]}\ndata: {paths: [x]}\n")
    r = run("jets", "train", str(bad), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2
    r = run("jets", "evaluate", str(tmp_path / "nothing"))
    assert r.exit_code == 2 and "config.yaml" in r.output
    r = run("jets", "generate", "--process", "higgs", "--out", str(tmp_path / "g"), "--events", "1")
    assert r.exit_code == 2 and "--process" in r.output
