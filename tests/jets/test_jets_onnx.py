"""``lhcml jets evaluate --backend onnx``: the shipped ParT in ONNX Runtime on real
Pythia + FastJet jets gives the torch probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run

pytest.importorskip("onnxruntime")


def test_onnx_backend_reproduces_torch_metrics(samples: dict[str, Path], tmp_path: Path) -> None:
    from lhcml.jets.dataset import read_jets
    from lhcml.jets.evaluation import predict
    from lhcml.jets.models import SHIPPED_MODEL_DIR
    from lhcml.jets.onnx import onnx_tagger
    from lhcml.jets.training import load_model

    model, cfg = load_model(SHIPPED_MODEL_DIR)
    data = read_jets(
        [samples["qcd"], samples["top"]], ("qcd", "top"), max_particles=cfg["data"]["max_particles"]
    )
    ref, _ = predict(model, data)
    onnx, _ = predict(onnx_tagger(model), data)
    assert np.abs(onnx - ref).max() < 1e-4
    metrics = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        args = ["--data", str(samples["qcd"]), "--data", str(samples["top"]), "--split", "all"]
        r = run("jets", "evaluate", "shipped", *args, "--out", str(out), "--backend", backend)
        assert r.exit_code == 0, r.output
        metrics[backend] = json.loads((out / "metrics.json").read_text())
    assert metrics["onnx"]["backend"] == "onnx"
    assert metrics["onnx"]["auc"] == pytest.approx(metrics["torch"]["auc"], abs=1e-6)
    r = run("jets", "evaluate", "shipped", "--data", str(samples["qcd"]), "--backend", "trt")
    assert r.exit_code == 2 and "--backend" in r.output
