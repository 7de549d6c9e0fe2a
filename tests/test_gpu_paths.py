"""Every model path on CUDA gives the CPU numbers (``pytest -m gpu``; skipped without a
CUDA device), and ``--device`` errors on a machine without one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from shipped_outputs import seeded_jets
from typer.testing import CliRunner

runner = CliRunner()


@pytest.mark.gpu
def test_metric_learning_embedding_on_cuda(trackml_prefix: Path) -> None:
    from lhcml.gnn.features import event_nodes
    from lhcml.gnn.files import load_model
    from lhcml.gnn.graph_construction.metric_learning import embed
    from lhcml.gnn.pipeline import DEFAULT_MODEL_DIR
    from lhcml.io import read_event

    x = event_nodes(read_event(trackml_prefix, parts=["hits"]), use_cells=False).x
    model, _ = load_model(DEFAULT_MODEL_DIR / "metric_learning.pt")
    cpu = embed(model, x)
    gpu = embed(model.to("cuda"), x, device="cuda")
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


@pytest.mark.gpu
def test_trackformer_on_cuda(trackml_prefix: Path) -> None:
    import lhcml.fitting
    from lhcml.fitting.candidates import truth_candidates
    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.evaluate import predict
    from lhcml.io import read_event

    model, feat, loss = load_model(Path(lhcml.fitting.__file__).parent / "models" / "default")
    cands = truth_candidates(read_event(trackml_prefix))
    cpu = predict(model, feat, loss, cands)
    gpu = predict(model.to("cuda"), feat, loss, cands)
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(gpu.cand_score, cpu.cand_score, atol=1e-3)


@pytest.mark.gpu
def test_part_on_cuda() -> None:
    from lhcml.jets.models import SHIPPED_MODEL_DIR
    from lhcml.jets.training import load_model

    model, cfg = load_model(SHIPPED_MODEL_DIR)
    inputs = seeded_jets(cfg)
    with torch.no_grad():
        cpu = model(*inputs)
        gpu = model.to("cuda")(*(t.to("cuda") for t in inputs)).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), atol=1e-3)


@pytest.mark.gpu
def test_edge_classifier_trains_on_cuda(tmp_path: Path) -> None:
    from lhcml.gnn.chain import train_chain
    from lhcml.gnn.config import load_config
    from lhcml.gnn.edge_classification.train import edge_classifier_train

    tiny = Path(__file__).resolve().parents[1] / "experiments" / "gnn" / "tiny.yaml"
    cfg = load_config(tiny)
    train_chain(cfg, tmp_path, progress=False, until="edge_filter", log=lambda _: None)
    graphs = tmp_path / "edge_filter" / "graphs"
    sec = {**cfg["edge_classifier"], "trainer": {"max_epochs": 2, "accelerator": "gpu"}}
    out = edge_classifier_train(graphs / "train", graphs / "val", tmp_path / "ec.pt", sec)
    assert (tmp_path / "ec.pt").is_file() and out["val"]["efficiency"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
@pytest.mark.parametrize(
    "args",
    [
        ["gnn", "edge-classifier", "train", "--train", "g", "--out", "x.pt", "--device", "cuda"],
        ["fit", "infer", "events", "--out", "o", "--device", "cuda"],
        ["jets", "evaluate", "shipped", "--device", "cuda"],
        ["reconstruct", "events", "--device", "cuda"],
    ],
)
def test_cuda_without_a_device_is_one_clear_error(args: list[str], tmp_path: Path) -> None:
    from lhcml.cli.main import app

    (tmp_path / "events").mkdir()
    (tmp_path / "g").mkdir()
    paths = {"g", "x.pt", "events", "o"}
    res = runner.invoke(app, [str(tmp_path / a) if a in paths else a for a in args])
    assert res.exit_code == 2, res.output
    assert "no CUDA device" in " ".join(res.output.split())


def test_unknown_device_names_the_option() -> None:
    from lhcml._device import check_device, trainer_device
    from lhcml.errors import ConfigError

    with pytest.raises(ConfigError, match="--device: 'tpu' unknown"):
        check_device("tpu")
    assert trainer_device("cpu") == {"accelerator": "cpu"}
